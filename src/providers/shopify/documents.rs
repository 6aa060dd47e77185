//! Every GraphQL document the Shopify adapter sends. Tests validate each one against
//! `../shared/reference/shopify-admin-discounts.graphql` (the 2026-10 schema subset).

/// The fields of a `DiscountCodeBasic` the adapter reads and compares (a macro, so that
/// `concat!` can append it to the documents that spread it).
macro_rules! basic_fragment {
    () => {
        "fragment Basic on DiscountCodeBasic {
  title
  status
  startsAt
  endsAt
  usageLimit
  asyncUsageCount
  recurringCycleLimit
  tags
  codes(first: 1) { nodes { code asyncUsageCount } }
  customerGets {
    value {
      __typename
      ... on DiscountPercentage { percentage }
      ... on DiscountAmount { amount { amount currencyCode } appliesOnEachItem }
    }
  }
  minimumRequirement {
    __typename
    ... on DiscountMinimumSubtotal { greaterThanOrEqualToSubtotal { amount } }
  }
  context {
    __typename
    ... on DiscountCustomers { customers { id } }
  }
}"
    };
}

pub const CREATE: &str = "mutation CouponCreate($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}";

pub const UPDATE: &str = "mutation CouponUpdate($id: ID!, $input: DiscountCodeBasicInput!) {
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}";

pub const DELETE: &str = "mutation CouponDelete($id: ID!) {
  discountCodeDelete(id: $id) {
    deletedCodeDiscountId
    userErrors { field code message }
  }
}";

pub const ACTIVATE: &str = "mutation CouponActivate($id: ID!) {
  discountCodeActivate(id: $id) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}";

pub const DEACTIVATE: &str = "mutation CouponDeactivate($id: ID!) {
  discountCodeDeactivate(id: $id) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}";

pub const METAFIELDS_SET: &str = "mutation OwnerSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id }
    userErrors { field code message }
  }
}";

pub const BY_CODE: &str = concat!(
    "query ByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { __typename ...Basic }
  }
}
",
    basic_fragment!()
);
/// Requested cost: the node, its discount, the nested objects and one code.
pub const BY_CODE_COST: f64 = 12.0;

/// Page size of the managed-discount listing (keeps a page under the 1,000-point query cap).
pub const PAGE: u32 = 50;

pub const MANAGED: &str = concat!(
    "query Managed($after: String, $query: String) {
  discountNodes(first: 50, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      discount { __typename ...Basic }
    }
  }
}
",
    basic_fragment!()
);
/// Requested cost of a page: 2 + 50 nodes of about 12 points each.
pub const MANAGED_COST: f64 = 2.0 + 50.0 * 12.0;

/// All documents, for validation.
pub const ALL: &[(&str, &str)] = &[
    ("CREATE", CREATE),
    ("UPDATE", UPDATE),
    ("DELETE", DELETE),
    ("ACTIVATE", ACTIVATE),
    ("DEACTIVATE", DEACTIVATE),
    ("METAFIELDS_SET", METAFIELDS_SET),
    ("BY_CODE", BY_CODE),
    ("MANAGED", MANAGED),
];
