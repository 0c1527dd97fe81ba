//! Media library (medias.json): `POST /medias/upload-file` (multipart `file`, or `hosted=true` + `fileUrl`),
//! `GET /medias/files`, `DELETE /medias/{id}`. The location comes from the token: Location tokens only.

use super::{paging, path, request};
use crate::client::{Body, FilePart, HighLevelClient, SpooledFile, TokenSource};
use crate::endpoints as ep;
use crate::error::HlError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// HighLevel's upload limit.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum Upload {
    File(FilePart),
    /// A file spooled to disk, streamed when sent.
    Spooled(SpooledFile),
    /// A file HighLevel fetches itself.
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    pub file_id: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFile {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MediaList {
    #[serde(default)]
    pub files: Vec<MediaFile>,
}

impl HighLevelClient {
    /// Uploads one file (or URL) to the location of the token.
    pub async fn upload_media<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        up: &Upload,
        name: Option<&str>,
    ) -> Result<Uploaded, HlError> {
        let mut fields = Vec::new();
        if let Some(n) = name {
            fields.push(("name".to_owned(), n.to_owned()));
        }
        let body = match up {
            Upload::File(f) => Body::Multipart {
                fields,
                file: Some(f.clone()),
            },
            Upload::Spooled(f) => Body::MultipartSpooled {
                fields,
                file: f.clone(),
            },
            Upload::Url(u) => {
                fields.push(("hosted".to_owned(), "true".to_owned()));
                fields.push(("fileUrl".to_owned(), u.clone()));
                Body::Multipart { fields, file: None }
            }
        };
        let req = request(
            &ep::MEDIAS_UPLOAD,
            ep::MEDIAS_UPLOAD.path.into(),
            vec![],
            body,
            location,
        );
        self.call(s, &req).await?.json()
    }

    pub async fn list_media<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<MediaList, HlError> {
        let mut query = vec![
            ("altId", location.to_owned()),
            ("altType", "location".to_owned()),
            ("sortBy", "createdAt".to_owned()),
            ("sortOrder", "desc".to_owned()),
            ("type", "file".to_owned()),
        ];
        paging(&mut query, limit, offset);
        let req = request(
            &ep::MEDIAS_LIST,
            ep::MEDIAS_LIST.path.into(),
            query,
            Body::Empty,
            location,
        );
        self.call(s, &req).await?.json()
    }

    pub async fn delete_media<S: TokenSource>(
        &self,
        s: &S,
        location: &str,
        id: &str,
    ) -> Result<(), HlError> {
        let path = path(&ep::MEDIAS_DELETE, &[("id", id)]);
        let query = vec![
            ("altId", location.to_owned()),
            ("altType", "location".to_owned()),
        ];
        let req = request(&ep::MEDIAS_DELETE, path, query, Body::Empty, location);
        self.call(s, &req).await.map(|_| ())
    }
}
