//! A write acknowledged with 2xx survives `kill -9` of the daemon right after.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let mut d = Daemon::start(dir.path(), &[]).await;
        for i in 0..5 {
            let uuid = format!("r{round}_{i}");
            let mut body = coupon(&uuid);
            body["promotion_codes"] = json!([{"code": format!("C{round}x{i}")}]);
            let r = client
                .post(format!("{}/v1/coupons", d.base))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::CREATED {
                acknowledged.push(uuid);
            }
        }
        d.kill9();
        let _ = d.child.wait().await;
    }
    assert_eq!(acknowledged.len(), 15);
    let d = Daemon::start(dir.path(), &[]).await;
    for uuid in &acknowledged {
        let r = client
            .get(format!("{}/v1/coupons/{uuid}", d.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{uuid} lost after kill -9");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["data"]["promotion_codes"]["data"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
