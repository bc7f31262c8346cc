//! The three docs routes, called in-process as API Gateway calls them.

use aicity_http::Limits;
use aicity_testkit::http::{Answer, Call, send};
use docs::Docs;

async fn call(docs: &Docs, call: Call) -> Answer {
    send(&|request| docs::handle(docs, request), &call).await
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_document_the_page_and_its_script() {
    let clients = aicity_testkit::clients().await;
    let docs = Docs {
        table: aicity_testkit::fresh_table(&clients).await,
        clients,
        limits: Limits::default(),
    };

    let document = call(&docs, Call::at("GET", "/api/v1/openapi.json")).await;
    assert_eq!(document.status, 200, "{:?}", document.body);
    assert_eq!(header(&document, "content-type"), "application/json");
    assert_eq!(document.body["openapi"], "3.1.0");
    assert!(
        document.body["paths"]["/api/v1/docs"]["get"].is_object(),
        "the document lists the page"
    );

    let page = call(&docs, Call::at("GET", "/api/v1/docs")).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.body.as_str().expect("an HTML page");
    assert!(
        html.contains(r#"<redoc spec-url="/api/v1/openapi.json""#),
        "{html}"
    );
    assert!(html.contains(r#"<script src="/api/v1/docs/redoc.standalone.js"></script>"#));
    assert!(
        !html.contains("http"),
        "the page loads nothing from elsewhere: {html}"
    );

    let script = call(
        &docs,
        Call::new(
            "GET",
            "/api/v1/docs/{asset}",
            "/api/v1/docs/redoc.standalone.js",
        ),
    )
    .await;
    assert_eq!(script.status, 200);
    assert!(header(&script, "content-type").starts_with("application/javascript"));
    let js = script.body.as_str().expect("a script");
    assert!(
        js.len() > 500_000,
        "the whole Redoc bundle: {} bytes",
        js.len()
    );
    assert!(
        js.contains(docs::REDOC_VERSION),
        "Redoc {}",
        docs::REDOC_VERSION
    );

    let missing = call(
        &docs,
        Call::new("GET", "/api/v1/docs/{asset}", "/api/v1/docs/other.js"),
    )
    .await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    assert_eq!(header(&missing, "content-type"), "application/json");
}
