//! `/openapi.json`, derived from the handlers' annotations and the wire types.

use super::{coupons, dto, promotion_codes, sync_admin, transactions};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "coupond", description = "Partnero-compatible coupon API served by coupond."),
    paths(
        coupons::create, coupons::list, coupons::get, coupons::update, coupons::delete, coupons::delete_by_body,
        promotion_codes::create, promotion_codes::list, promotion_codes::get, promotion_codes::update, promotion_codes::delete,
        transactions::create, transactions::list, transactions::get, transactions::delete, transactions::delete_by_body,
        sync_admin::failed, sync_admin::history, sync_admin::retry_one, sync_admin::retry_all,
    ),
    components(schemas(dto::CouponOut, dto::PromotionCodeOut, dto::TransactionOut, dto::ValidationErrorBody, dto::StatusMessage)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;
