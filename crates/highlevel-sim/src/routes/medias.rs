//! Media library (medias.json): multipart upload up to 25 MB or a hosted `fileUrl`; the location comes from
//! the token, so only Location tokens may upload.

use crate::access::{self, authorize};
use crate::errors::{HlError, HlResult};
use crate::routes::{page, query, remove_by_id, require_version, required_params};
use crate::state::{new_id, now_iso, Sim};
use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/medias/upload-file", web::post().to(upload))
        .route("/medias/files", web::get().to(list))
        .route("/medias/{id}", web::delete().to(delete));
}

#[derive(Default)]
struct Upload {
    file_name: Option<String>,
    content_type: Option<String>,
    size: usize,
    sha256: Option<String>,
    hosted: bool,
    file_url: Option<String>,
    name: Option<String>,
    parent_id: Option<String>,
}

async fn read_text(field: &mut actix_multipart::Field) -> HlResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk =
            chunk.map_err(|e| HlError::bad_request(&format!("Malformed multipart body: {e}")))?;
        if buf.len() + chunk.len() > 64 * 1024 {
            return Err(HlError::bad_request("Form field too long"));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| HlError::bad_request("Form field is not UTF-8"))
}

async fn upload(
    req: HttpRequest,
    sim: web::Data<Sim>,
    mut payload: Multipart,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let token = authorize(&req, &access::MEDIAS_UPLOAD, None)?;
    let mut up = Upload::default();
    while let Some(field) = payload.next().await {
        let mut field =
            field.map_err(|e| HlError::bad_request(&format!("Malformed multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                up.file_name = field
                    .content_disposition()
                    .and_then(|c| c.get_filename())
                    .map(str::to_owned);
                up.content_type = field.content_type().map(|m| m.to_string());
                let mut hasher = Sha256::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|e| {
                        HlError::bad_request(&format!("Malformed multipart body: {e}"))
                    })?;
                    up.size += chunk.len();
                    if up.size > MAX_UPLOAD_BYTES {
                        return Err(HlError::nest(
                            413,
                            "File too large: the maximum is 25 MB",
                            "Payload Too Large",
                        ));
                    }
                    hasher.update(&chunk);
                }
                up.sha256 = Some(format!("{:x}", hasher.finalize()));
            }
            "hosted" => up.hosted = read_text(&mut field).await? == "true",
            "fileUrl" => up.file_url = Some(read_text(&mut field).await?),
            "name" => up.name = Some(read_text(&mut field).await?),
            "parentId" => up.parent_id = Some(read_text(&mut field).await?),
            _ => {
                read_text(&mut field).await?;
            }
        }
    }
    if up.hosted && up.file_url.as_deref().is_none_or(str::is_empty) {
        return Err(HlError::unprocessable(vec![
            "fileUrl should not be empty when hosted is true".into(),
        ]));
    }
    if !up.hosted && up.sha256.is_none() {
        return Err(HlError::unprocessable(vec![
            "file should not be empty unless hosted is true".into(),
        ]));
    }
    let id = new_id();
    let name = up.name.or(up.file_name).unwrap_or_else(|| id.clone());
    let url = match (&up.file_url, up.hosted) {
        (Some(u), true) => u.clone(),
        _ => format!(
            "https://storage.googleapis.com/highlevel-sim/location/{}/media/{id}/{name}",
            token.class_id
        ),
    };
    let file = json!({
        "_id": id,
        "altId": token.class_id,
        "altType": "location",
        "name": name,
        "parentId": up.parent_id,
        "url": url,
        "path": format!("{}/{}", token.class_id, name),
        "type": "file",
        "contentType": up.content_type,
        "size": up.size,
        "sha256": up.sha256,
        "hosted": up.hosted,
        "createdAt": now_iso(),
    });
    sim.world()
        .medias
        .entry(token.class_id.clone())
        .or_default()
        .push(file);
    Ok(HttpResponse::Ok().json(json!({"fileId": id, "url": url})))
}

async fn list(req: HttpRequest, sim: web::Data<Sim>) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::MEDIAS_LIST,
        q.get("altId").map(String::as_str),
    )?;
    required_params(&q, &["sortBy", "sortOrder", "type", "altType", "altId"])?;
    let world = sim.world();
    let mut files: Vec<Value> = world.medias.get(&q["altId"]).cloned().unwrap_or_default();
    if let Some(text) = q.get("query").map(|s| s.to_lowercase()) {
        files.retain(|f| {
            f["name"]
                .as_str()
                .is_some_and(|n| n.to_lowercase().contains(&text))
        });
    }
    if q["sortOrder"] == "desc" {
        files.reverse();
    }
    Ok(HttpResponse::Ok().json(json!({"files": page(&files, &q, 100)})))
}

async fn delete(
    req: HttpRequest,
    sim: web::Data<Sim>,
    path: web::Path<String>,
) -> HlResult<HttpResponse> {
    require_version(&req)?;
    let q = query(&req);
    authorize(
        &req,
        &access::MEDIAS_DELETE,
        q.get("altId").map(String::as_str),
    )?;
    required_params(&q, &["altType", "altId"])?;
    let mut world = sim.world();
    let files = world.medias.entry(q["altId"].clone()).or_default();
    if !remove_by_id(files, &path) {
        return Err(HlError::not_found("File not found"));
    }
    Ok(HttpResponse::Ok().json(json!({})))
}
