//! The seeding step of a scenario: create `count` items through a bulk endpoint, `batch` items
//! per request, `concurrency` requests in flight, before the measured run. An optional check
//! request skips seeding when the data is already there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::Full;

use crate::BenchError;
use crate::client::{self, Sender};
use crate::keys::{KeyFormat, write_key};
use crate::scenario::{SeedSpec, bearer};
use crate::template::Template;
use crate::workload::{ReqBody, Target};

/// What seeding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    /// The check request showed the data is there.
    Skipped,
    /// Items created, in this many requests.
    Created {
        /// Items sent.
        items: u64,
        /// Requests made.
        requests: u64,
    },
}

/// Renders the body of batch `b` (items `b*batch .. min((b+1)*batch, count)`).
pub fn batch_body(item: &Template, body: &Template, spec: &SeedSpec, b: u64) -> String {
    let start = b * spec.batch;
    let end = (start + spec.batch).min(spec.count);
    let mut items = String::with_capacity((end - start) as usize * 64);
    for i in start..end {
        if i > start {
            items.push(',');
        }
        item.render_with(&mut items, |_, out| {
            write_key(KeyFormat::Decimal, 0, i, out);
        });
    }
    let mut out = String::with_capacity(items.len() + 32);
    body.render_with(&mut out, |_, out| out.push_str(&items));
    out
}

fn header_map(
    spec: &SeedSpec,
    target: &Target,
) -> Result<Vec<(HeaderName, HeaderValue)>, BenchError> {
    let bad = |name: &str| BenchError::Config(format!("seed.headers: invalid header `{name}`"));
    let mut headers = vec![(
        HOST,
        HeaderValue::from_str(&target.authority).map_err(|_| bad("host"))?,
    )];
    if !spec
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    }
    for (k, v) in &spec.headers {
        headers.push((
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad(k))?,
            HeaderValue::from_str(v).map_err(|_| bad(k))?,
        ));
    }
    if let Some(var) = &spec.auth_env {
        let value = bearer(var).replace("{{", "{");
        headers.push((
            AUTHORIZATION,
            HeaderValue::from_str(&value).map_err(|_| bad("authorization"))?,
        ));
    }
    Ok(headers)
}

fn request(
    method: &Method,
    path: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Request<ReqBody>, BenchError> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method.clone();
    *req.uri_mut() = path
        .parse()
        .map_err(|_| BenchError::Config(format!("seed: invalid path `{path}`")))?;
    for (k, v) in headers {
        req.headers_mut().append(k.clone(), v.clone());
    }
    Ok(req)
}

async fn sender(
    slot: &mut Option<Sender>,
    addr: std::net::SocketAddr,
) -> Result<&mut Sender, BenchError> {
    if slot.as_ref().is_none_or(Sender::is_closed) {
        *slot = Some(
            client::connect(addr)
                .await
                .map_err(|e| BenchError::Seed(e.to_string()))?,
        );
    }
    slot.as_mut()
        .ok_or_else(|| BenchError::Seed("no connection".into()))
}

/// Runs the seeding step against `target` (paths are prefixed with `prefix`).
pub async fn seed(
    spec: &SeedSpec,
    target: &Target,
    prefix: &str,
    verbose: bool,
) -> Result<SeedOutcome, BenchError> {
    let addr = client::resolve(target)
        .await
        .map_err(|e| BenchError::Seed(e.to_string()))?;
    let headers = header_map(spec, target)?;
    if let Some(check) = &spec.check {
        let mut slot = None;
        let req = request(
            &Method::GET,
            &format!("{prefix}{}", check.path),
            &headers[..1],
            Bytes::new(),
        )?;
        let (status, _) = client::exchange_collect(sender(&mut slot, addr).await?, req)
            .await
            .map_err(|e| BenchError::Seed(e.to_string()))?;
        if status == check.status {
            if verbose {
                eprintln!("seed: skipped, GET {} already answers {status}", check.path);
            }
            return Ok(SeedOutcome::Skipped);
        }
    }
    let keys = BTreeMap::from([("key".to_owned(), 0)]);
    let item = Template::compile(&spec.item, &keys)
        .map_err(|e| BenchError::Config(format!("seed.item: {e}")))?;
    let items = BTreeMap::from([("items".to_owned(), 0)]);
    let body = Template::compile(&spec.body, &items)
        .map_err(|e| BenchError::Config(format!("seed.body: {e}")))?;
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| {
        BenchError::Config(format!("seed.method: invalid method `{}`", spec.method))
    })?;
    let path = format!("{prefix}{}", spec.path);
    let batches = spec.count.div_ceil(spec.batch);
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let worker = || async {
        let mut slot: Option<Sender> = None;
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= batches {
                return Ok::<(), BenchError>(());
            }
            let text = batch_body(&item, &body, spec, b);
            let req = request(&method, &path, &headers, Bytes::from(text))?;
            let s = sender(&mut slot, addr).await?;
            let (status, resp) = client::exchange_collect(s, req)
                .await
                .map_err(|e| BenchError::Seed(format!("batch {b}: {e}")))?;
            let ok = if spec.expect_status.is_empty() {
                (200..300).contains(&status)
            } else {
                spec.expect_status.contains(&status)
            };
            if !ok {
                let excerpt = String::from_utf8_lossy(&resp[..resp.len().min(300)]).into_owned();
                let hint = match (status, &spec.auth_env) {
                    (401 | 403, Some(var)) => format!(" (is {var} set to the server's admin key?)"),
                    _ => String::new(),
                };
                return Err(BenchError::Seed(format!(
                    "{} {path} (batch {b}) answered {status}{hint}: {excerpt}",
                    spec.method
                )));
            }
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            if verbose && (finished.is_multiple_of((batches / 10).max(1)) || finished == batches) {
                eprintln!(
                    "seed: {finished}/{batches} batches ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    };
    let workers = (0..spec.concurrency).map(|_| worker());
    futures::future::try_join_all(workers).await?;
    Ok(SeedOutcome::Created {
        items: spec.count,
        requests: batches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(count: u64, batch: u64) -> SeedSpec {
        SeedSpec {
            method: "POST".into(),
            path: "/bulk".into(),
            count,
            batch,
            item: r#"{"url":"https://e/{key}","alias":"k{key}"}"#.into(),
            body: r#"{"links":[{items}]}"#.into(),
            headers: BTreeMap::new(),
            auth_env: None,
            concurrency: 2,
            expect_status: vec![],
            check: None,
        }
    }

    #[test]
    fn batches_cover_every_key_once() {
        let s = spec(5, 2);
        let item = Template::compile(&s.item, &BTreeMap::from([("key".into(), 0)])).unwrap();
        let body = Template::compile(&s.body, &BTreeMap::from([("items".into(), 0)])).unwrap();
        assert_eq!(
            batch_body(&item, &body, &s, 0),
            r#"{"links":[{"url":"https://e/0","alias":"k0"},{"url":"https://e/1","alias":"k1"}]}"#
        );
        assert_eq!(
            batch_body(&item, &body, &s, 2),
            r#"{"links":[{"url":"https://e/4","alias":"k4"}]}"#
        );
        let all: String = (0..3).map(|b| batch_body(&item, &body, &s, b)).collect();
        for k in 0..5 {
            assert_eq!(all.matches(&format!("\"k{k}\"")).count(), 1);
        }
        let parsed: serde_json::Value =
            serde_json::from_str(&batch_body(&item, &body, &s, 1)).unwrap();
        assert_eq!(parsed["links"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn headers_include_host_content_type_and_bearer() {
        let mut s = spec(1, 1);
        s.auth_env = Some("PRAXIS_BENCH_TEST_UNSET_TOKEN_VAR".into());
        let target = Target::parse("http://127.0.0.1:9").unwrap();
        let h = header_map(&s, &target).unwrap();
        assert_eq!(h[0], (HOST, HeaderValue::from_static("127.0.0.1:9")));
        assert!(
            h.iter()
                .any(|(k, v)| *k == CONTENT_TYPE && v == "application/json")
        );
        assert!(h.iter().any(|(k, v)| *k == AUTHORIZATION && v == "Bearer "));
    }
}
