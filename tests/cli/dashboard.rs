//! `queuectl dashboard`, `queuectl metrics` and `worker start --metrics` through the real
//! binary and plain HTTP (no browser; see `browser.rs` for that): every safety rule of
//! CONTRACT.md "Seeing the queue" (escaping, CSRF, foreign origins, the token off
//! loopback, read-only) and the metrics text, checked by two parsers.

use std::net::SocketAddr;
use std::time::Duration;

use super::{wait_until, Env, Proc};
use crate::support::http::{encode, Request, Response};
use crate::support::metrics_text;

/// A payload for every place a job's strings appear.
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = r#""><img src=x onerror=alert(2)>"#;

/// A running dashboard, killed on drop.
pub(crate) struct Dashboard {
    _proc: Proc,
    pub(crate) addr: SocketAddr,
}

impl Dashboard {
    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Response {
        Request::get(self.addr, path).send()
    }

    /// The CSRF token its pages embed.
    pub(crate) fn csrf(&self) -> String {
        let page = self.get("/");
        assert_eq!(page.status, 200, "{page:?}");
        page.body
            .split(r#"<meta name="csrf-token" content=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a csrf-token meta tag")
            .to_owned()
    }

    /// The origin a browser on its pages sends.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts `queuectl dashboard --listen 127.0.0.1:0 EXTRA…` and waits for its URL.
pub(crate) fn start(env: &Env, extra: &[&str]) -> Dashboard {
    let mut args = vec!["dashboard", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut proc = env.spawn(env.cmd(&args));
    let mut url = String::new();
    wait_until(Duration::from_secs(30), "the dashboard's URL", || {
        assert!(proc.is_running(), "dashboard exited: {}", proc.stderr());
        url = proc.stdout();
        url.ends_with('\n')
    });
    let addr = url
        .trim()
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a dashboard URL: {url:?}"));
    Dashboard { _proc: proc, addr }
}

/// A dead job whose id, command, queue, output and error all carry markup.
fn hostile_dead_job(env: &Env) -> String {
    let command = format!("printf '%s\\n' '{SCRIPT}' '{IMG}'; printf '%s\\n' '{IMG}' >&2; exit 3");
    let job = serde_json::json!({
        "id": SCRIPT,
        "command": command,
        "queue": IMG,
        "max_retries": 1,
    });
    let id = env.enqueue(&job.to_string());
    env.run(&["worker", "start", "--drain"]).ok();
    assert_eq!(env.state(&id), "dead");
    id
}

#[track_caller]
fn assert_escaped(page: &Response) {
    assert_eq!(page.status, 200, "{page:?}");
    for raw in ["<script>alert", "<img src=x", "\"><img"] {
        assert!(!page.body.contains(raw), "raw {raw:?} in:\n{}", page.body);
    }
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
}

store_test! {
    /// Every page and part that shows a job's id, command, queue, output or error shows
    /// it escaped, and the search finds it by a substring of its command.
    fn dashboard_escapes_every_job_provided_string(env) {
        let id = hostile_dead_job(&env);
        let dash = start(&env, &[]);
        let job = format!("/job?id={}", encode(&id));
        let part = format!("/part/job?id={}", encode(&id));
        let page = dash.get(&job);
        assert_escaped(&page);
        assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.body);
        assert!(page.body.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"), "{}", page.body);
        assert_escaped(&dash.get(&part));
        let queue = format!("/jobs?queue={}", encode(IMG));
        let search = format!("/jobs?q={}", encode("onerror=alert"));
        for path in ["/", "/part/counts", "/jobs", "/jobs?state=dead", "/part/jobs", &queue, &search] {
            let page = dash.get(path);
            assert_escaped(&page);
            assert!(
                page.body.contains("&lt;script&gt;") || page.body.contains("&quot;&gt;&lt;img"),
                "{path} shows the job or its queue:\n{}",
                page.body
            );
        }
        let found = dash.get(&format!("/part/jobs?q={}", encode("exit 3")));
        assert!(found.body.contains(&encode(&id)), "{}", found.body);
        let missed = dash.get(&format!("/part/jobs?q={}", encode("EXIT 3")));
        assert!(missed.body.contains("No jobs match"), "search is case-sensitive: {}", missed.body);
    }
}

store_test! {
    /// An action without the page's CSRF token, with a wrong one, from a foreign origin or
    /// sent by another site gets a 4xx and changes nothing; with the token from the
    /// dashboard's own origin it works and redirects back to the job.
    fn actions_need_the_csrf_token_and_the_dashboards_own_origin(env) {
        let id = env.enqueue(r#"{"id":"broken","command":"exit 9","max_retries":1}"#);
        env.run(&["worker", "start", "--drain"]).ok();
        assert_eq!(env.state(&id), "dead");
        let dash = start(&env, &[]);
        let csrf = dash.csrf();
        let origin = dash.origin();
        let post = |fields: &[(&str, &str)]| Request::post_form(dash.addr, "/job/retry", fields);
        let refused = [
            post(&[("id", &id)]).header("Origin", &origin).send(),
            post(&[("id", &id), ("csrf", "guess")]).header("Origin", &origin).send(),
            post(&[("id", &id), ("csrf", &csrf[1..])]).send(),
            post(&[("id", &id), ("csrf", &csrf)]).header("Origin", "http://evil.example").send(),
            post(&[("id", &id), ("csrf", &csrf)]).header("Origin", "null").send(),
            post(&[("id", &id), ("csrf", &csrf)]).header("Sec-Fetch-Site", "cross-site").send(),
            // A foreign page cannot forge Host either: the loopback check runs first.
            post(&[("id", &id), ("csrf", &csrf)]).header("Host", "evil.example").send(),
        ];
        for r in &refused {
            assert!((400..500).contains(&r.status), "{r:?}");
        }
        assert_eq!(env.state(&id), "dead", "a refused action changes nothing");
        // GET never acts.
        let get = dash.get(&format!("/job/retry?id={id}&csrf={csrf}"));
        assert!((400..500).contains(&get.status), "{get:?}");
        assert_eq!(env.state(&id), "dead");

        let ok = post(&[("id", &id), ("csrf", &csrf)]).header("Origin", &origin).send();
        assert_eq!(ok.status, 303, "{ok:?}");
        assert_eq!(ok.header("location"), Some("/job?id=broken&done=retry"));
        assert_eq!(env.state(&id), "pending");
        let page = dash.get("/job?id=broken&done=retry");
        assert!(page.body.contains("Requeued"), "{}", page.body);

        // A wrong state is a 409 naming it, and changes nothing.
        let again = post(&[("id", &id), ("csrf", &csrf)]).header("Origin", &origin).send();
        assert_eq!(again.status, 409, "{again:?}");
        assert!(again.body.contains("pending"), "{}", again.body);
        let cancel = Request::post_form(dash.addr, "/job/cancel", &[("id", &id), ("csrf", &csrf)])
            .header("Origin", &origin)
            .send();
        assert_eq!(cancel.status, 303, "{cancel:?}");
        assert_eq!(env.state(&id), "cancelled");
        let ghost = post(&[("id", "ghost"), ("csrf", &csrf)]).send();
        assert_eq!(ghost.status, 404, "{ghost:?}");
        let unknown = Request::post_form(dash.addr, "/job/explode", &[("id", &id), ("csrf", &csrf)]).send();
        assert_eq!(unknown.status, 404, "{unknown:?}");
    }
}

store_test! {
    /// "Retry all dead jobs" needs the token too, and requeues every dead job.
    fn retry_all_dead_is_a_guarded_bulk_action(env) {
        for i in 0..3 {
            env.enqueue(&format!(r#"{{"id":"d{i}","command":"exit 1","max_retries":1}}"#));
        }
        env.run(&["worker", "start", "--drain"]).ok();
        let dash = start(&env, &[]);
        let list = dash.get("/jobs?state=dead");
        assert!(list.body.contains(r#"action="/jobs/retry-all-dead""#), "{}", list.body);
        let without = Request::post_form(dash.addr, "/jobs/retry-all-dead", &[]).send();
        assert_eq!(without.status, 403, "{without:?}");
        assert_eq!(env.status()["dead"], 3);
        let with = Request::post_form(dash.addr, "/jobs/retry-all-dead", &[("csrf", &dash.csrf())])
            .header("Origin", &dash.origin())
            .send();
        assert_eq!(with.status, 303, "{with:?}");
        assert_eq!(env.status()["dead"], 0);
        assert_eq!(env.status()["pending"], 3);
        let after = dash.get(with.header("location").expect("location"));
        assert!(after.body.contains("Requeued 3 dead jobs"), "{}", after.body);
    }
}

store_test! {
    /// The overview shows a queue's controls and pauses or resumes it, guarded like every
    /// action.
    fn queues_are_paused_and_resumed_from_the_overview(env) {
        env.enqueue(r#"{"command":"true","queue":"mail"}"#);
        env.run(&["queue", "concurrency", "mail", "2"]).ok();
        let dash = start(&env, &[]);
        let page = dash.get("/");
        assert!(page.body.contains(r#"action="/queue/pause""#), "{}", page.body);
        assert!(page.body.contains("max 2"), "{}", page.body);
        let pause = |csrf: &str| {
            Request::post_form(dash.addr, "/queue/pause", &[("queue", "mail"), ("csrf", csrf)])
                .header("Origin", &dash.origin())
                .send()
        };
        assert_eq!(pause("guess").status, 403);
        assert_eq!(env.run(&["queue", "list", "--json"]).json()[0]["paused"], false);
        let ok = pause(&dash.csrf());
        assert_eq!(ok.status, 303, "{ok:?}");
        assert_eq!(env.run(&["queue", "list", "--json"]).json()[0]["paused"], true);
        let resume = Request::post_form(dash.addr, "/queue/resume", &[("queue", "mail"), ("csrf", &dash.csrf())])
            .header("Origin", &dash.origin())
            .send();
        assert_eq!(resume.status, 303, "{resume:?}");
        let q = env.run(&["queue", "list", "--json"]).json();
        assert_eq!((q[0]["paused"].clone(), q[0]["concurrency"].clone()), (false.into(), 2.into()));
    }
}

#[test]
fn read_only_hides_and_refuses_actions() {
    let env = Env::new();
    let id = env.enqueue(r#"{"id":"broken","command":"exit 9","max_retries":1}"#);
    env.run(&["worker", "start", "--drain"]).ok();
    let dash = start(&env, &["--read-only"]);
    for path in [
        "/",
        "/jobs?state=dead",
        "/job?id=broken",
        "/part/job?id=broken",
    ] {
        let page = dash.get(path);
        assert_eq!(page.status, 200, "{page:?}");
        assert!(
            !page.body.contains("method=\"post\""),
            "{path}: {}",
            page.body
        );
    }
    assert!(dash.get("/").body.contains("read-only"));
    let csrf = dash.csrf();
    let r = Request::post_form(dash.addr, "/job/retry", &[("id", &id), ("csrf", &csrf)])
        .header("Origin", &dash.origin())
        .send();
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("read-only"), "{}", r.body);
    assert_eq!(env.state(&id), "dead");
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let env = Env::new();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let run = env.run(&["dashboard", "--listen", listen]).code(2);
        assert!(run.stderr.contains("--token"), "{}", run.stderr);
        assert!(
            run.stderr.contains("QUEUECTL_DASHBOARD_TOKEN"),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
    let short = env.run(&["dashboard", "--token", "short"]).code(2);
    assert!(short.stderr.contains("at least 16"), "{}", short.stderr);
    let bad = env.run(&["dashboard", "--listen", "somewhere"]).code(2);
    assert!(bad.stderr.contains("IP:PORT"), "{}", bad.stderr);
    assert!(!env.db().exists(), "a refused start opens no store");
}

#[test]
fn a_token_guards_every_request_when_given() {
    let env = Env::new();
    let token = "correct-horse-battery-staple";
    let mut cmd = env.cmd(&["dashboard", "--listen", "127.0.0.1:0"]);
    cmd.env("QUEUECTL_DASHBOARD_TOKEN", token);
    let mut proc = env.spawn(cmd);
    wait_until(Duration::from_secs(30), "the URL", || {
        assert!(proc.is_running(), "{}", proc.stderr());
        proc.stdout().ends_with('\n')
    });
    let addr: SocketAddr = proc.stdout().trim()["http://".len()..]
        .trim_end_matches('/')
        .parse()
        .expect("addr");
    for path in ["/", "/metrics", "/assets/app.js", "/job?id=x"] {
        let r = Request::get(addr, path).send();
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert!(r
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")));
    }
    let wrong = Request::get(addr, "/")
        .header("Authorization", "Bearer nope")
        .send();
    assert_eq!(wrong.status, 401);
    let bearer = Request::get(addr, "/")
        .header("Authorization", &format!("Bearer {token}"))
        .send();
    assert_eq!(bearer.status, 200, "{bearer:?}");
    // Basic "admin:TOKEN", as a browser sends it after its prompt; any Host is accepted
    // once a token guards the server (it may sit behind a proxy with its own name).
    let basic = Request::get(addr, "/metrics")
        .header(
            "Authorization",
            "Basic YWRtaW46Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZQ==",
        )
        .header("Host", "queue.example.com")
        .send();
    assert_eq!(basic.status, 200, "{basic:?}");
}

#[test]
fn without_a_token_only_loopback_host_names_are_served() {
    let env = Env::new();
    let dash = start(&env, &[]);
    for host in ["evil.example", "evil.example:8080", "10.0.0.1"] {
        let r = Request::get(dash.addr, "/").header("Host", host).send();
        assert_eq!(r.status, 403, "{host}: {r:?}");
        assert!(!r.body.contains("csrf"), "{}", r.body);
    }
    let port = dash.addr.port();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(
            Request::get(dash.addr, "/")
                .header("Host", &host)
                .send()
                .status,
            200
        );
    }
    assert_eq!(dash.get("/no/such/page").status, 404);
    assert_eq!(dash.get("/jobs?state=done").status, 400);
    assert_eq!(dash.get("/job?id=ghost").status, 404);
}

store_test! {
    /// Lists page newest first, 50 at a time, by cursor, and the total is the store's.
    fn job_lists_page_by_cursor(env) {
        let jobs: String = (0..120)
            .map(|i| format!("{{\"id\":\"job-{i:03}\",\"command\":\"echo {i}\"}}\n"))
            .collect();
        env.run_stdin(&["enqueue", "-"], &jobs).ok();
        let dash = start(&env, &[]);
        let ids = |body: &str| -> Vec<String> {
            body.split("href=\"/job?id=")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned)
                .collect()
        };
        let next = |body: &str| -> Option<String> {
            body.split(r#"<a href=""#)
                .filter_map(|rest| rest.split_once(r#"" rel="next""#))
                .map(|(href, _)| href.replace("&amp;", "&"))
                .next()
        };
        let first = dash.get("/jobs?state=pending");
        assert!(first.body.contains("<span data-total>120</span> jobs"), "{}", first.body);
        let page1 = ids(&first.body);
        assert_eq!(page1.len(), 50);
        assert_eq!(page1[0], "job-119");
        // New jobs do not shift the pages after the first.
        env.enqueue(r#"{"id":"job-new","command":"true"}"#);
        let second = dash.get(&next(&first.body).expect("an Older link"));
        let page2 = ids(&second.body);
        assert_eq!(page2.first().map(String::as_str), Some("job-069"));
        assert_eq!(page2.len(), 50);
        let third = dash.get(&next(&second.body).expect("an Older link"));
        let page3 = ids(&third.body);
        assert_eq!(page3.len(), 20);
        assert_eq!(page3.last().map(String::as_str), Some("job-000"));
        assert_eq!(next(&third.body), None);
        assert!(third.body.contains("« Newest"));
        let found = dash.get("/jobs?q=echo%2011");
        assert_eq!(ids(&found.body), ["job-119", "job-118", "job-117", "job-116", "job-115", "job-114", "job-113", "job-112", "job-111", "job-110", "job-011"]);
        let exact = dash.get("/jobs?q=job-007");
        assert!(exact.body.contains("A job has exactly this id"), "{}", exact.body);
    }
}

/// Checks the metrics text with both parsers; returns the strict one's samples.
///
/// `prometheus-parse` splits label lists at every comma, so it misreads a label value
/// holding a comma, a quote or a backslash (which the strict parser checks is escaped):
/// the two are compared on the samples whose labels it can read.
fn parse_metrics(text: &str) -> metrics_text::Samples {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus-parse reads it");
    let samples = metrics_text::parse(text);
    let plain = |labels: &metrics_text::Labels| {
        labels
            .values()
            .all(|v| !v.contains([',', '"', '\\', '=', '\n']))
    };
    let find = |name: &str, labels: &metrics_text::Labels| {
        scrape.samples.iter().find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k) == Some(v.as_str()))
        })
    };
    let mut compared = 0;
    for ((name, labels), value) in &samples.0 {
        if !plain(labels) {
            continue;
        }
        if let Some(base) = name.strip_suffix("_bucket") {
            let mut without_le = labels.clone();
            without_le.remove("le");
            let Some(found) = find(base, &without_le) else {
                panic!("prometheus-parse has no histogram {base}{without_le:?}")
            };
            let prometheus_parse::Value::Histogram(buckets) = &found.value else {
                panic!("{base} is not a histogram to prometheus-parse")
            };
            let le: f64 = metrics_text::parse_number(&labels["le"]);
            assert!(
                buckets
                    .iter()
                    .any(|b| b.less_than == le && b.count == *value),
                "{name}{labels:?}: {buckets:?}"
            );
        } else {
            let found = find(name, labels)
                .unwrap_or_else(|| panic!("prometheus-parse has no {name}{labels:?}"));
            match found.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => assert_eq!(v, *value, "{name}{labels:?}"),
                ref other => panic!("{name}: {other:?}"),
            }
        }
        compared += 1;
    }
    assert!(compared > 0, "nothing to compare in:\n{text}");
    samples
}

store_test! {
    /// `queuectl metrics` prints text both parsers accept, whose job gauges match
    /// `status`, whose attempt counters and histograms count the history, and the
    /// dashboard's `/metrics` serves the same series.
    fn metrics_describe_the_store(env) {
        let jobs = [
            r#"{"id":"ok-1","command":"true","queue":"mail"}"#,
            r#"{"id":"ok-2","command":"true","queue":"mail"}"#,
            r#"{"id":"bad","command":"exit 4","queue":"reports","max_retries":2}"#,
            r#"{"id":"quote","command":"true","queue":"we \"quote\", and \\ slash"}"#,
        ];
        for job in jobs {
            env.enqueue(job);
        }
        env.run(&["config", "set", "backoff-base", "1"]).ok();
        env.run(&["worker", "start", "--drain"]).ok();
        // Enqueued after the drain, which would wait for it.
        env.enqueue(r#"{"id":"later","command":"true","queue":"reports","run_at":"2999-01-01T00:00:00Z"}"#);
        let run = env.run(&["metrics"]);
        let text = run.ok();
        let m = parse_metrics(&text);
        let status = env.status();
        for state in ["pending", "processing", "completed", "failed", "dead", "cancelled"] {
            let total: f64 = m
                .all("queuectl_jobs")
                .iter()
                .filter(|(l, _)| l["state"] == state)
                .map(|(_, v)| v)
                .sum();
            assert_eq!(total, status[state].as_f64().expect("count"), "{state}");
        }
        assert_eq!(m.get("queuectl_jobs", &[("queue", "mail"), ("state", "completed")]), Some(2.0));
        assert_eq!(m.get("queuectl_jobs", &[("queue", "reports"), ("state", "dead")]), Some(1.0));
        assert_eq!(
            m.get("queuectl_jobs", &[("queue", "we \"quote\", and \\ slash"), ("state", "completed")]),
            Some(1.0)
        );
        assert_eq!(m.get("queuectl_workers", &[]), Some(0.0));
        let attempts = |queue: &str, outcome: &str| {
            m.get("queuectl_attempts_total", &[("queue", queue), ("outcome", outcome)])
        };
        assert_eq!(attempts("mail", "completed"), Some(2.0));
        assert_eq!(attempts("reports", "failed"), Some(2.0));
        assert_eq!(attempts("reports", "completed"), Some(0.0));
        assert_eq!(m.get("queuectl_attempt_duration_seconds_count", &[("queue", "reports")]), Some(2.0));
        // "bad" ran twice, so its first pickup is not known any more; "later" never ran.
        assert_eq!(m.get("queuectl_pickup_latency_seconds_count", &[("queue", "mail")]), Some(2.0));
        assert_eq!(m.get("queuectl_pickup_latency_seconds_count", &[("queue", "reports")]), Some(0.0));
        // "later" is pending but not due: nothing is waiting.
        assert_eq!(m.get("queuectl_oldest_pending_age_seconds", &[("queue", "reports")]), Some(0.0));

        let dash = start(&env, &[]);
        let served = dash.get("/metrics");
        assert_eq!(served.status, 200);
        assert!(served.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
        let again = parse_metrics(&served.body);
        let names = |s: &metrics_text::Samples| -> Vec<(String, metrics_text::Labels)> {
            s.0.keys().cloned().collect()
        };
        assert_eq!(names(&again), names(&m));
    }
}

/// The `queuectl_attempts_total` samples of a metrics text: (queue, outcome) → value.
pub(crate) fn attempt_counters(text: &str) -> Vec<(String, String, f64)> {
    parse_metrics(text)
        .all("queuectl_attempts_total")
        .into_iter()
        .map(|(labels, v)| (labels["queue"].clone(), labels["outcome"].clone(), v))
        .collect()
}

/// What the dashboard's throughput chart shows: its legend (the hour's totals) and the
/// title of every minute with attempts, e.g. `04:31: 2 completed, 1 failed (UTC)`, which
/// stay the same when the chart's window moves on by a minute.
fn chart(env: &Env) -> (String, Vec<String>) {
    let dash = start(env, &[]);
    let part = dash.get("/part/throughput");
    assert_eq!(part.status, 200);
    let body = part.body;
    let legend = body
        .split_once(r#"<p class="legend">"#)
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(legend, _)| legend.to_owned())
        .unwrap_or_else(|| panic!("no legend in {body}"));
    let minutes = body
        .split("<g><title>")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("</title>")
                .map(|(title, _)| title.to_owned())
        })
        .filter(|title| !title.contains(": 0 completed, 0 failed"))
        .collect();
    (legend, minutes)
}

store_test! {
    /// Contract "Seeing the queue": completions and failures are counters and throughput
    /// is kept as counters, so deleting a job, pruning and purging the DLQ leave
    /// `queuectl_attempts_total` and the dashboard's chart exactly as they were.
    fn pruning_and_deleting_leave_the_counters_and_the_chart_as_they_were(env) {
        for job in [
            r#"{"id":"ok-1","command":"true","queue":"mail"}"#,
            r#"{"id":"ok-2","command":"true","queue":"mail"}"#,
            r#"{"id":"bad","command":"exit 4","queue":"reports","max_retries":2}"#,
        ] {
            env.enqueue(job);
        }
        env.run(&["config", "set", "backoff-base", "1"]).ok();
        env.run(&["worker", "start", "--drain"]).ok();
        let counters = attempt_counters(&env.run(&["metrics"]).ok());
        let find = |queue: &str, outcome: &str| {
            counters
                .iter()
                .find(|(q, o, _)| q == queue && o == outcome)
                .map(|(_, _, v)| *v)
        };
        assert_eq!(find("mail", "completed"), Some(2.0));
        assert_eq!(find("reports", "failed"), Some(2.0));
        let before = chart(&env);
        assert!(before.0.contains("2 completed") && before.0.contains("2 failed"), "{before:?}");
        assert!(!before.1.is_empty());

        env.run(&["delete", "ok-1"]).ok();
        assert_eq!(attempt_counters(&env.run(&["metrics"]).ok()), counters, "after delete");
        assert_eq!(
            env.run(&["prune", "--older-than", "0", "--state", "completed"]).ok().trim(),
            "pruned 1 jobs"
        );
        assert_eq!(attempt_counters(&env.run(&["metrics"]).ok()), counters, "after prune");
        env.run(&["dlq", "purge"]).ok();
        assert_eq!(env.status()["dead"].as_u64(), Some(0));
        assert_eq!(attempt_counters(&env.run(&["metrics"]).ok()), counters, "after purge");
        assert_eq!(env.list(&[]).len(), 0, "every job is gone");
        assert_eq!(chart(&env), before);
    }
}

#[test]
fn a_waiting_job_shows_in_the_oldest_pending_age() {
    let env = Env::new();
    env.enqueue(r#"{"command":"true","queue":"slow","run_at":"2020-01-01T00:00:00Z"}"#);
    let m = parse_metrics(&env.run(&["metrics"]).ok());
    let age = m
        .get("queuectl_oldest_pending_age_seconds", &[("queue", "slow")])
        .expect("the queue's age");
    assert!(age > 86_400.0 * 365.0, "{age}");
}

#[test]
fn a_worker_serves_metrics_while_it_runs() {
    let env = Env::new();
    for i in 0..3 {
        env.enqueue(&format!(r#"{{"id":"m{i}","command":"true"}}"#));
    }
    let worker = env.spawn_worker(&["--count", "2", "--metrics", "127.0.0.1:0"]);
    let mut url = String::new();
    wait_until(
        Duration::from_secs(30),
        "the metrics URL in the log",
        || {
            url = worker
                .stderr()
                .split("url=http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_default()
                .to_owned();
            !url.is_empty()
        },
    );
    let addr: SocketAddr = url.trim_end_matches("/metrics").parse().expect("addr");
    wait_until(Duration::from_secs(30), "the jobs to complete", || {
        let r = Request::get(addr, "/metrics").send();
        assert_eq!(r.status, 200, "{r:?}");
        let m = parse_metrics(&r.body);
        m.get("queuectl_workers", &[]) == Some(2.0)
            && m.get(
                "queuectl_jobs",
                &[("queue", "default"), ("state", "completed")],
            ) == Some(3.0)
    });
    assert_eq!(Request::get(addr, "/").send().status, 404);
    // A taken port is an error before any job runs.
    let taken = env
        .run(&["worker", "start", "--metrics", &addr.to_string()])
        .code(1);
    assert!(
        taken.stderr.contains("cannot serve metrics"),
        "{}",
        taken.stderr
    );
    worker.kill();
}

store_test! {
    /// The schedules page lists each schedule, with its name and job escaped.
    fn dashboard_lists_schedules_escaped(env) {
        let dash = start(&env, &[]);
        assert!(dash.get("/schedules").body.contains("No schedules"));
        let job = serde_json::json!({ "command": format!("echo '{SCRIPT}'") }).to_string();
        env.run(&["cron", "add", IMG, "@hourly", &job, "--tz", "Europe/Berlin"]).ok();
        for path in ["/schedules", "/part/schedules"] {
            let page = dash.get(path);
            assert_escaped(&page);
            assert!(page.body.contains("&quot;&gt;&lt;img src=x"), "{path}:\n{}", page.body);
            assert!(page.body.contains("&lt;script&gt;alert(1)"), "{path}:\n{}", page.body);
            assert!(page.body.contains("Europe/Berlin") && page.body.contains("@hourly"));
        }
    }
}

store_test! {
    /// The dashboard's Retry takes any finished job (as `retry` does), Delete removes a job
    /// that is not running and goes back to the job list, and "Purge the dead-letter queue"
    /// deletes every dead job (as `dlq purge` does); all need the token.
    fn retry_delete_and_purge_act_as_the_commands_do(env) {
        env.enqueue(r#"{"id":"done","command":"true"}"#);
        for i in 0..2 {
            env.enqueue(&format!(r#"{{"id":"d{i}","command":"exit 1","max_retries":1}}"#));
        }
        env.run(&["worker", "start", "--drain"]).ok();
        let dash = start(&env, &[]);
        let act = |path: &str, fields: &[(&str, &str)]| {
            Request::post_form(dash.addr, path, fields)
                .header("Origin", &dash.origin())
                .send()
        };
        let csrf = dash.csrf();
        let page = dash.get("/job?id=done");
        assert!(page.body.contains(r#"action="/job/retry""#), "{}", page.body);
        assert!(page.body.contains(r#"action="/job/delete""#), "{}", page.body);
        let retried = act("/job/retry", &[("id", "done"), ("csrf", &csrf)]);
        assert_eq!(retried.status, 303, "{retried:?}");
        assert_eq!(env.state("done"), "pending");

        let refused = act("/job/delete", &[("id", "done")]);
        assert!((400..500).contains(&refused.status), "{refused:?}");
        let deleted = act("/job/delete", &[("id", "done"), ("csrf", &csrf)]);
        assert_eq!(deleted.status, 303, "{deleted:?}");
        assert_eq!(deleted.header("location"), Some("/jobs"));
        env.run(&["show", "done"]).code(1);

        let list = dash.get("/jobs?state=dead");
        assert!(list.body.contains(r#"action="/jobs/purge-dead""#), "{}", list.body);
        let refused = act("/jobs/purge-dead", &[]);
        assert!((400..500).contains(&refused.status), "{refused:?}");
        assert_eq!(env.status()["dead"], 2);
        let purged = act("/jobs/purge-dead", &[("csrf", &csrf)]);
        assert_eq!(purged.status, 303, "{purged:?}");
        assert_eq!(env.status()["dead"], 0);
        let after = dash.get(purged.header("location").expect("location"));
        assert!(after.body.contains("Purged 2 dead jobs"), "{}", after.body);
    }
}
