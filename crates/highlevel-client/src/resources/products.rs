//! Products (products.json): `POST /products/`, `GET /products/`, `GET|PUT|DELETE /products/{productId}`.

use super::{paging, path, request};
use crate::client::{Body, HighLevelClient, TokenSource};
use crate::endpoints as ep;
use crate::error::HlError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductType {
    #[serde(rename = "DIGITAL")]
    Digital,
    #[serde(rename = "PHYSICAL")]
    Physical,
    #[serde(rename = "SERVICE")]
    Service,
    #[serde(rename = "PHYSICAL/DIGITAL")]
    PhysicalDigital,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Image,
    Video,
}

/// ProductMediaDto: required `id`, `url`, `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductMedia {
    pub id: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: MediaType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_featured: Option<bool>,
}

/// CreateProductDto / UpdateProductDto: required `name`, `locationId`, `productType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewProduct {
    pub name: String,
    pub location_id: String,
    pub product_type: ProductType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_in_store: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub medias: Vec<ProductMedia>,
}

/// DefaultProductResponseDto: the id is `_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    #[serde(rename = "_id")]
    pub id: String,
    pub location_id: String,
    pub name: String,
    pub product_type: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub available_in_store: Option<bool>,
    #[serde(default)]
    pub medias: Vec<ProductMedia>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProductList {
    pub products: Vec<Product>,
    /// `[{"total": N}]`
    #[serde(default)]
    pub total: Vec<Total>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Total {
    pub total: u64,
}

impl ProductList {
    pub fn total(&self) -> u64 {
        self.total
            .first()
            .map_or(self.products.len() as u64, |t| t.total)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub search: Option<String>,
}

impl HighLevelClient {
    pub async fn create_product<S: TokenSource>(
        &self,
        s: &S,
        p: &NewProduct,
    ) -> Result<Product, HlError> {
        let body = Body::Json(serde_json::to_value(p).unwrap_or_default());
        let req = request(
            &ep::PRODUCTS_CREATE,
            ep::PRODUCTS_CREATE.path.into(),
            vec![],
            body,
            &p.location_id,
        );
        self.call(s, &req).await?.json()
    }

    pub async fn list_products<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        q: &ListQuery,
    ) -> Result<ProductList, HlError> {
        let mut query = vec![("locationId", location.to_owned())];
        paging(&mut query, q.limit, q.offset);
        if let Some(t) = &q.search {
            query.push(("search", t.clone()));
        }
        let req = request(
            &ep::PRODUCTS_LIST,
            ep::PRODUCTS_LIST.path.into(),
            query,
            Body::Empty,
            location,
        );
        self.call(s, &req).await?.json()
    }

    pub async fn get_product<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<Product, HlError> {
        let p = path(&ep::PRODUCTS_GET, &[("productId", id)]);
        let req = request(
            &ep::PRODUCTS_GET,
            p,
            vec![("locationId", location.to_owned())],
            Body::Empty,
            location,
        );
        self.call(s, &req).await?.json()
    }

    pub async fn update_product<S: TokenSource>(
        &self,
        s: &S,
        id: &str,
        p: &NewProduct,
    ) -> Result<Product, HlError> {
        let path = path(&ep::PRODUCTS_UPDATE, &[("productId", id)]);
        let body = Body::Json(serde_json::to_value(p).unwrap_or_default());
        let req = request(&ep::PRODUCTS_UPDATE, path, vec![], body, &p.location_id);
        self.call(s, &req).await?.json()
    }

    pub async fn delete_product<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<(), HlError> {
        let p = path(&ep::PRODUCTS_DELETE, &[("productId", id)]);
        let req = request(
            &ep::PRODUCTS_DELETE,
            p,
            vec![("locationId", location.to_owned())],
            Body::Empty,
            location,
        );
        self.call(s, &req).await.map(|_| ())
    }
}
