//! `/api/locations/{locationId}/media`: multipart upload (field `file`, up to 10 files of 25 MB, images and
//! videos only, all checked before anything is sent to HighLevel) or `{"url"}`; list; delete.
//!
//! **Bounded.** Every file is kept until HighLevel has it (the HighLevel client rebuilds the form for its one
//! replay after a refused token), so a multipart upload can hold 250 MB. Files are therefore spooled to
//! temporary files as the body streams in (sizes checked on the way) and streamed from there to HighLevel,
//! and all uploads under way share one budget of bytes (`MEDIA_BUFFER_BUDGET`, [`MediaBudget`]): an upload
//! whose body does not fit in what is left is answered 503 with `Retry-After` before it is read, and nothing
//! of it is sent to HighLevel; one larger than the whole budget is answered 413.

use super::bodies::{MediaListOut, MediaOut, MediaUrlInput};
use super::{id, Located, State};
use crate::error::ApiError;
use crate::upload_budget::MediaBudget;
use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures::StreamExt;
use highlevel_client::resources::medias::{Upload, MAX_UPLOAD_BYTES};
use highlevel_client::SpooledFile;
use shared_types::Problem;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;

pub const MAX_FILES: usize = 10;
/// The whole multipart body: ten files and their headers.
pub const MAX_MULTIPART_BYTES: usize = MAX_FILES * MAX_UPLOAD_BYTES + 1024 * 1024;
const MAX_URL_BODY: usize = 16 * 1024;
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/locations/{locationId}/media")
            .route(web::get().to(list))
            .route(web::post().to(upload)),
    )
    .route(
        "/api/locations/{locationId}/media/{mediaId}",
        web::delete().to(delete),
    );
}

/// Media of a location.
#[utoipa::path(get, path = "/api/locations/{locationId}/media", operation_id = "listMedia", tag = "media",
    params(("locationId" = String, Path)),
    responses((status = 200, body = MediaListOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn list(
    at: Located,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let tokens = at.tokens(&state);
    let list = state
        .hl
        .list_media(&tokens, &location, Some(100), None)
        .await?;
    Ok(HttpResponse::Ok().json(MediaListOut {
        files: list
            .files
            .into_iter()
            .map(|f| MediaOut {
                id: f.id,
                url: f.url.unwrap_or_default(),
                name: f.name,
                content_type: f.content_type,
                size: f.size,
            })
            .collect(),
    }))
}

/// Upload files (multipart, field `file`, up to 10, 25 MB each, image/* or video/*) or a URL (`{"url"}`).
#[utoipa::path(post, path = "/api/locations/{locationId}/media", operation_id = "uploadMedia", tag = "media",
    params(("locationId" = String, Path)),
    request_body(content = MediaUrlInput, description = "or multipart/form-data with up to 10 `file` fields"),
    responses((status = 201, body = MediaListOut), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn upload(
    at: Located,
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let location = path.into_inner();
    let tokens = at.tokens(&state);
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Held until the files have gone to HighLevel (and their spool files are removed with `uploads`).
    let mut held = None;
    let uploads: Vec<(Upload, Option<String>)> = if content_type.starts_with("multipart/form-data")
    {
        let declared = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared {
            if len > MAX_MULTIPART_BYTES as u64 {
                return Err(ApiError::PayloadTooLarge(
                    "the upload is larger than 10 files of 25 MB".into(),
                ));
            }
            state.media_budget.take(&mut held, len)?;
        }
        read_files(
            Multipart::new(req.headers(), payload),
            &state.media_budget,
            &mut held,
        )
        .await?
    } else if content_type.starts_with("application/json") {
        let body = read_limited(payload, MAX_URL_BODY).await?;
        let input: MediaUrlInput = serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                ApiError::Validation(e.to_string())
            } else {
                ApiError::InvalidRequest(format!("the body is not valid JSON: {e}"))
            }
        })?;
        match super::bodies::image_ref(&input.url) {
            Ok(super::bodies::ImageRef::Url(u)) => vec![(Upload::Url(u), input.name)],
            _ => return Err(ApiError::Validation("`url` must be an http(s) URL".into())),
        }
    } else {
        return Err(ApiError::UnsupportedMediaType(
            "send multipart/form-data with `file` fields, or application/json {\"url\"}".into(),
        ));
    };
    let mut out = Vec::new();
    for (up, name) in &uploads {
        match state
            .hl
            .upload_media(&tokens, &location, up, name.as_deref())
            .await
        {
            Ok(u) => out.push(MediaOut {
                id: u.file_id,
                url: u.url,
                name: name.clone().or(match up {
                    Upload::File(f) => Some(f.file_name.clone()),
                    Upload::Spooled(f) => Some(f.file_name.clone()),
                    Upload::Url(_) => None,
                }),
                content_type: match up {
                    Upload::File(f) => Some(f.content_type.clone()),
                    Upload::Spooled(f) => Some(f.content_type.clone()),
                    Upload::Url(_) => None,
                },
                size: match up {
                    Upload::File(f) => Some(f.bytes.len() as u64),
                    Upload::Spooled(f) => Some(f.len),
                    Upload::Url(_) => None,
                },
            }),
            Err(e) => {
                // All or nothing: the files already uploaded by this request are removed.
                for done in &out {
                    if let Err(err) = state.hl.delete_media(&tokens, &location, &done.id).await {
                        tracing::warn!(media = %done.id, error = %err, "could not remove an uploaded file after a failed batch");
                    }
                }
                return Err(e.into());
            }
        }
    }
    drop(uploads);
    drop(held);
    Ok(HttpResponse::Created().json(MediaListOut { files: out }))
}

async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::InvalidRequest(format!("the body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is larger than {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn allowed_type(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    (t.starts_with("image/") || t.starts_with("video/")) && t.len() < 100
}

/// Every `file` part, checked (count, size, type) and spooled to a temporary file as it streams in, its bytes
/// counted against `budget` (beyond what `held` already holds for the declared length). Nothing is sent
/// before all of them passed.
async fn read_files(
    mut mp: Multipart,
    budget: &MediaBudget,
    held: &mut Option<OwnedSemaphorePermit>,
) -> Result<Vec<(Upload, Option<String>)>, ApiError> {
    let spool_error = |e: std::io::Error| {
        tracing::error!(error = %e, dir = %budget.dir.display(), "cannot spool an upload (MEDIA_SPOOL_DIR)");
        ApiError::Internal(format!("cannot spool an upload: {e}"))
    };
    let mut files = Vec::new();
    let mut total = 0usize;
    while let Some(field) = mp.next().await {
        let mut field = field
            .map_err(|e| ApiError::InvalidRequest(format!("malformed multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            return Err(ApiError::Validation(format!(
                "unexpected multipart field `{}`: send files as `file`",
                name.chars().take(40).collect::<String>()
            )));
        }
        if files.len() == MAX_FILES {
            return Err(ApiError::Validation(format!(
                "at most {MAX_FILES} files per upload"
            )));
        }
        let file_name = field
            .content_disposition()
            .and_then(|c| c.get_filename())
            .map(|f| {
                f.chars()
                    .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
                    .take(200)
                    .collect::<String>()
            })
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| format!("upload-{}", files.len() + 1));
        let content_type = field
            .content_type()
            .map(|m| m.essence_str().to_owned())
            .unwrap_or_default();
        if !allowed_type(&content_type) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "`{file_name}` is `{}`: only image/* and video/* files are accepted",
                if content_type.is_empty() {
                    "of no declared type"
                } else {
                    &content_type
                }
            )));
        }
        let (file, path) = tempfile::NamedTempFile::new_in(&budget.dir)
            .map_err(spool_error)?
            .into_parts();
        let mut spool = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
        let mut len = 0usize;
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::InvalidRequest(format!("malformed multipart body: {e}")))?;
            if len + chunk.len() > MAX_UPLOAD_BYTES {
                return Err(ApiError::PayloadTooLarge(format!(
                    "`{file_name}` is larger than 25 MB, HighLevel's limit"
                )));
            }
            total += chunk.len();
            if total > MAX_MULTIPART_BYTES {
                return Err(ApiError::PayloadTooLarge(
                    "the upload is larger than 10 files of 25 MB".into(),
                ));
            }
            // A body without a declared length (or longer than declared) takes its room as it comes.
            budget.take(held, total as u64)?;
            spool.write_all(&chunk).await.map_err(spool_error)?;
            len += chunk.len();
        }
        spool.flush().await.map_err(spool_error)?;
        drop(spool);
        if len == 0 {
            return Err(ApiError::Validation(format!("`{file_name}` is empty")));
        }
        files.push((
            Upload::Spooled(SpooledFile {
                file_name: file_name.clone(),
                content_type,
                len: len as u64,
                file: Arc::new(path),
            }),
            Some(file_name),
        ));
    }
    if files.is_empty() {
        return Err(ApiError::Validation("no `file` field in the upload".into()));
    }
    Ok(files)
}

/// Delete a file from the media library.
#[utoipa::path(delete, path = "/api/locations/{locationId}/media/{mediaId}", operation_id = "deleteMedia", tag = "media",
    params(("locationId" = String, Path), ("mediaId" = String, Path)),
    responses((status = 204), (status = "4XX", body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    at: Located,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (location, media) = path.into_inner();
    id("media id", &media)?;
    let tokens = at.tokens(&state);
    state.hl.delete_media(&tokens, &location, &media).await?;
    Ok(HttpResponse::NoContent().finish())
}
