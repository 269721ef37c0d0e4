//! `queuectl dashboard`: a web page of the queue, served by this process alone (axum; the
//! script and the stylesheet are compiled into the binary, no build step).
//!
//! Pages are rendered on the server with every job-provided string escaped
//! ([`html`]); a small script refreshes marked regions by fetching their HTML again from
//! `/part/…` (counts every 2 s, the job list's first page every 3 s, a job every second
//! while it can still change, the chart every 5 s), pausing while the tab is hidden. The
//! store is synchronous: every read runs on tokio's blocking pool, and what several tabs
//! poll (the overview, the chart, the metrics) is read at most once per short interval and
//! shared. Who may see and act is [`guard`]'s business, in one middleware.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | counts per state and queue, throughput over the last hour |
//! | `GET /jobs?state=&queue=&q=&before=` | jobs newest first, filtered and searched, keyset-paged |
//! | `GET /job?id=` | one job: fields, actions, output, history |
//! | `GET /workers` | the worker registry and heartbeats |
//! | `GET /schedules` | periodic jobs (`queuectl cron`), read-only |
//! | `GET /metrics` | the Prometheus text of [`crate::cli::metrics`] |
//! | `POST /job/<action>`, `POST /jobs/<action>`, `POST /queue/<action>` | the actions of [`action`] |

mod action;
mod guard;
mod html;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use queuectl::live_workers;
use queuectl::{
    AttemptStats, AttemptStatsRequest, JobCursor, JobId, JobPage, JobPageRequest, JobRecord,
    JobState, QueueStats, StoreError, Timestamp, WorkerInfo,
};
use serde::Deserialize;

use self::action::{BulkAction, JobAction, QueueAction};
use self::html::{esc, job_href, Layout};
use self::view::{ListFilter, Overview};
use crate::cli::metrics;
use crate::cli::open_store::Sched;

/// Jobs per page of a list.
const PAGE_SIZE: u32 = 50;

/// How the dashboard was started.
#[derive(Debug)]
pub(crate) struct Options {
    /// The token every request must carry, if any.
    pub(crate) token: Option<String>,
    /// Hide and refuse actions.
    pub(crate) read_only: bool,
}

/// The state every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sched: Arc<Sched>,
    options: Options,
    /// Embedded in every page and required in every form: a fresh random value per process.
    csrf: String,
    overview: Cache<Overview>,
    throughput: Cache<AttemptStats>,
    metrics: Cache<String>,
}

impl App {
    /// The dashboard of the store behind `sched`.
    pub(crate) fn new(sched: Sched, options: Options) -> Self {
        let csrf = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        App {
            inner: Arc::new(Inner {
                sched: Arc::new(sched),
                options,
                csrf,
                overview: Cache::new(Duration::from_secs(1)),
                throughput: Cache::new(Duration::from_secs(5)),
                metrics: Cache::new(Duration::from_secs(1)),
            }),
        }
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.inner.options.token.as_deref()
    }

    pub(crate) fn read_only(&self) -> bool {
        self.inner.options.read_only
    }

    pub(crate) fn csrf(&self) -> &str {
        &self.inner.csrf
    }

    fn layout<'a>(&'a self, title: &'a str, nav: &'a str) -> Layout<'a> {
        Layout {
            title,
            nav,
            csrf: self.csrf(),
            read_only: self.read_only(),
        }
    }

    /// Runs a store call on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Sched) -> Result<T, AppError> + Send + 'static,
    {
        let sched = Arc::clone(&self.inner.sched);
        tokio::task::spawn_blocking(move || f(&sched))
            .await
            .map_err(|_| AppError::Internal("a store call failed unexpectedly".to_owned()))?
    }

    /// The router with every route and the guard in front.
    pub(crate) fn router(self) -> Router {
        Router::new()
            .route("/", get(overview_page))
            .route("/part/counts", get(counts_part))
            .route("/part/throughput", get(throughput_part))
            .route("/jobs", get(jobs_page))
            .route("/part/jobs", get(jobs_part))
            .route("/job", get(job_page))
            .route("/part/job", get(job_part))
            .route("/workers", get(workers_page))
            .route("/part/workers", get(workers_part))
            .route("/schedules", get(schedules_page))
            .route("/part/schedules", get(schedules_part))
            .route("/metrics", get(metrics_text))
            .route("/assets/app.js", get(script))
            .route("/assets/app.css", get(stylesheet))
            .route("/job/{action}", post(job_action))
            .route("/jobs/{action}", post(bulk_action))
            .route("/queue/{action}", post(queue_action))
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                guard::guard,
            ))
            .with_state(self)
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.router().into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

/// The address the dashboard is reachable at, for people: `http://ADDR/`.
pub(crate) fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

// ----- a short-lived shared value -----

/// A value computed at most once per `ttl`, shared by every request meanwhile; concurrent
/// requests for a stale value wait for one computation instead of each running it.
#[derive(Debug)]
struct Cache<T> {
    ttl: Duration,
    slot: tokio::sync::Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T: Send + Sync + 'static> Cache<T> {
    fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    async fn get<F>(&self, app: &App, compute: F) -> Result<Arc<T>, AppError>
    where
        F: FnOnce(&Sched) -> Result<T, AppError> + Send + 'static,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(Arc::clone(value));
            }
        }
        let value = Arc::new(app.blocking(compute).await?);
        *slot = Some((Instant::now(), Arc::clone(&value)));
        Ok(value)
    }
}

// ----- errors -----

/// A failed request, shown as a small page with the matching status.
#[derive(Debug)]
enum AppError {
    NotFound(String),
    Conflict(String),
    BadRequest(String),
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => AppError::NotFound(e.to_string()),
            StoreError::WrongState { .. } | StoreError::Conflict(_) => {
                AppError::Conflict(e.to_string())
            }
            other => AppError::Internal(crate::cli::render_error(&anyhow::Error::new(other))),
        }
    }
}

impl From<queuectl::Error> for AppError {
    fn from(e: queuectl::Error) -> Self {
        match e {
            queuectl::Error::Store(s) => s.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<queuectl::Error>() {
            Ok(q) => q.into(),
            Err(e) => match e.downcast::<StoreError>() {
                Ok(s) => s.into(),
                Err(e) => AppError::Internal(crate::cli::render_error(&e)),
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::Internal(m) => {
                tracing::warn!(error = %m, "dashboard request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, m)
            }
        };
        let layout = Layout {
            title: status.canonical_reason().unwrap_or("Error"),
            nav: "",
            csrf: "",
            read_only: false,
        };
        let body = format!(
            r#"<h1>{}</h1><p class="error">{}</p><p><a href="/">Back to the overview</a></p>"#,
            status.as_u16(),
            esc(&message)
        );
        (status, Html(layout.page(&body))).into_response()
    }
}

async fn not_found() -> AppError {
    AppError::NotFound("no such page".to_owned())
}

// ----- the overview -----

async fn load_overview(app: &App) -> Result<Arc<Overview>, AppError> {
    app.inner
        .overview
        .get(app, |sched| {
            let now = sched.now();
            let mut queues = sched.store().queue_stats(now)?;
            let settings = sched.store().queue_settings()?;
            // A paused or limited queue without jobs still gets its row (and its button).
            for s in &settings {
                if !queues.iter().any(|q| q.queue == s.queue) {
                    queues.push(QueueStats {
                        queue: s.queue.clone(),
                        ..QueueStats::default()
                    });
                }
            }
            queues.sort_by(|a, b| a.queue.cmp(&b.queue));
            let live = live_workers(sched)?;
            Ok(Overview {
                now,
                queues,
                settings,
                workers: live.len(),
                slots: live.iter().map(|w| u64::from(w.slots)).sum(),
            })
        })
        .await
}

async fn load_throughput(app: &App) -> Result<(Arc<AttemptStats>, Timestamp), AppError> {
    let stats = app
        .inner
        .throughput
        .get(app, |sched| {
            let since = sched.now().sub(Duration::from_secs(
                60 * u64::try_from(view::CHART_MINUTES).unwrap_or(60),
            ));
            Ok(sched.store().attempt_stats(&AttemptStatsRequest {
                since: Some(since),
                duration_bounds_ms: Vec::new(),
                pickup_bounds_ms: Vec::new(),
                step_ms: 60_000,
            })?)
        })
        .await?;
    Ok((stats, Timestamp::now()))
}

/// An HTML fragment the script refreshes, with the interval it should wait next.
fn part(html: String, every_ms: u64) -> Response {
    let mut response = Html(html).into_response();
    if let Ok(v) = HeaderValue::from_str(&every_ms.to_string()) {
        response.headers_mut().insert("x-refresh-every", v);
    }
    response
}

async fn overview_page(State(app): State<App>) -> Result<Html<String>, AppError> {
    let overview = load_overview(&app).await?;
    let body = format!(
        r#"<h1>Overview</h1>{counts}<h2>Throughput</h2>{chart}"#,
        counts = view::live(
            "/part/counts",
            2_000,
            &view::counts_part(&overview, app.csrf(), app.read_only())
        ),
        // The chart reads attempt history, which can be slow on a large store without an
        // aggregate query: the page does not wait for it, the script loads it at once.
        chart = view::live(
            "/part/throughput",
            5_000,
            r#"<p class="empty" data-loading>Loading…</p>"#
        ),
    );
    Ok(Html(app.layout("Overview", "overview").page(&body)))
}

async fn counts_part(State(app): State<App>) -> Result<Response, AppError> {
    let overview = load_overview(&app).await?;
    Ok(part(
        view::counts_part(&overview, app.csrf(), app.read_only()),
        2_000,
    ))
}

async fn throughput_part(State(app): State<App>) -> Result<Response, AppError> {
    let (stats, now) = load_throughput(&app).await?;
    Ok(part(view::throughput_part(&stats, now), 5_000))
}

// ----- lists -----

/// `/jobs` and `/part/jobs` query parameters (empty ones count as absent).
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    state: Option<String>,
    queue: Option<String>,
    q: Option<String>,
    before: Option<String>,
    /// A bulk action just done, and how many jobs it changed.
    done: Option<String>,
    n: Option<u64>,
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

impl ListQuery {
    fn filter(&self) -> Result<ListFilter<'_>, AppError> {
        let state = non_empty(self.state.as_ref())
            .map(|s| {
                s.parse::<JobState>()
                    .map_err(|e| AppError::BadRequest(e.to_string()))
            })
            .transpose()?;
        let before = non_empty(self.before.as_ref())
            .map(|b| {
                b.parse::<u64>()
                    .map_err(|_| AppError::BadRequest(format!("before={b}: not a page cursor")))
            })
            .transpose()?;
        Ok(ListFilter {
            state,
            queue: non_empty(self.queue.as_ref()),
            search: non_empty(self.q.as_ref()),
            before,
        })
    }
}

async fn load_page(app: &App, f: &ListFilter<'_>) -> Result<JobPage, AppError> {
    let req = JobPageRequest {
        state: f.state,
        queue: f.queue.map(str::to_owned),
        search: f.search.map(str::to_owned),
        before: f.before.map(JobCursor),
        limit: PAGE_SIZE,
    };
    app.blocking(move |sched| Ok(sched.store().page(&req)?))
        .await
}

/// The list refreshes itself only on its first page: older pages stay put while read.
fn jobs_live(f: &ListFilter<'_>, inner: &str) -> String {
    if f.before.is_some() {
        inner.to_owned()
    } else {
        view::live(&format!("/part/jobs{}", f.query(None)), 3_000, inner)
    }
}

async fn jobs_page(
    State(app): State<App>,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, AppError> {
    let f = q.filter()?;
    let overview = load_overview(&app).await?;
    let page = load_page(&app, &f).await?;
    // A search that is exactly a job's id also offers the job itself.
    let exact = match f.search {
        Some(text) => {
            let id = JobId::new(text);
            app.blocking(move |sched| match sched.store().get(&id) {
                Ok(job) => Ok(Some(job)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            })
            .await?
        }
        None => None,
    };
    let mut body = String::new();
    let title = match (f.state, f.queue) {
        (Some(JobState::Dead), None) => "Dead letters".to_owned(),
        (Some(s), None) => format!("{} jobs", capitalised(s.as_str())),
        (Some(s), Some(q)) => format!("{} jobs in {}", capitalised(s.as_str()), q),
        (None, Some(q)) => format!("Jobs in {q}"),
        (None, None) => "Jobs".to_owned(),
    };
    body.push_str(&format!("<h1>{}</h1>", esc(&title)));
    if let Some(done) = non_empty(q.done.as_ref()).and_then(BulkAction::from_name) {
        body.push_str(&format!(
            r#"<p class="notice" role="status">{}</p>"#,
            esc(&done.done(q.n.unwrap_or(0)))
        ));
    }
    if let Some(job) = exact {
        body.push_str(&format!(
            r#"<p class="notice">A job has exactly this id: <a href="{}">{}</a></p>"#,
            esc(&job_href(job.id.as_str())),
            esc(job.id.as_str())
        ));
    }
    body.push_str(&view::list_header(
        &f,
        &overview.queues,
        app.csrf(),
        app.read_only(),
    ));
    body.push_str(&jobs_live(&f, &view::jobs_part(&page, &f, overview.now)));
    let nav = if f.state == Some(JobState::Dead) && f.queue.is_none() {
        "dead"
    } else {
        "jobs"
    };
    Ok(Html(app.layout(&title, nav).page(&body)))
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn jobs_part(
    State(app): State<App>,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let f = q.filter()?;
    let page = load_page(&app, &f).await?;
    Ok(part(view::jobs_part(&page, &f, Timestamp::now()), 3_000))
}

// ----- one job -----

#[derive(Debug, Deserialize)]
struct JobQuery {
    id: Option<String>,
    /// A job action just done.
    done: Option<String>,
}

impl JobQuery {
    fn id(&self) -> Result<JobId, AppError> {
        non_empty(self.id.as_ref())
            .map(JobId::new)
            .ok_or_else(|| AppError::BadRequest("which job? (/job?id=ID)".to_owned()))
    }
}

/// The job's record; while it runs, its `output` is what the running attempt has written
/// so far (the store's live output), which is what the job's page shows.
async fn load_record(app: &App, id: JobId) -> Result<(JobRecord, Timestamp), AppError> {
    app.blocking(move |sched| {
        let mut record = sched.store().get_record(&id)?;
        if record.job.state == JobState::Processing {
            record.output = sched.store().live_output(&id)?.map(|l| l.to_output());
        }
        Ok((record, sched.now()))
    })
    .await
}

/// How often a job's part refreshes: often while it can change by itself.
fn job_every(state: JobState) -> u64 {
    match state {
        JobState::Pending | JobState::Processing | JobState::Failed => 1_000,
        JobState::Completed | JobState::Dead | JobState::Cancelled => 5_000,
    }
}

async fn job_page(
    State(app): State<App>,
    Query(q): Query<JobQuery>,
) -> Result<Html<String>, AppError> {
    let id = q.id()?;
    let (record, now) = load_record(&app, id.clone()).await?;
    let mut body = format!(
        r#"<h1 class="jobid">Job <code>{}</code></h1>"#,
        esc(id.as_str())
    );
    if let Some(done) = non_empty(q.done.as_ref()).and_then(JobAction::from_name) {
        body.push_str(&format!(
            r#"<p class="notice" role="status">{}</p>"#,
            esc(done.done())
        ));
    }
    body.push_str(&view::live(
        &job_href(id.as_str()).replacen("/job", "/part/job", 1),
        job_every(record.job.state),
        &view::job_part(&record, now, app.csrf(), app.read_only()),
    ));
    Ok(Html(app.layout(&format!("Job {id}"), "jobs").page(&body)))
}

async fn job_part(State(app): State<App>, Query(q): Query<JobQuery>) -> Result<Response, AppError> {
    let (record, now) = load_record(&app, q.id()?).await?;
    let every = job_every(record.job.state);
    Ok(part(
        view::job_part(&record, now, app.csrf(), app.read_only()),
        every,
    ))
}

// ----- workers -----

async fn load_workers(
    app: &App,
) -> Result<(Vec<WorkerInfo>, Vec<WorkerInfo>, Timestamp), AppError> {
    app.blocking(|sched| {
        let all = sched.store().list_workers()?;
        let live = live_workers(sched)?;
        Ok((all, live, sched.now()))
    })
    .await
}

async fn workers_page(State(app): State<App>) -> Result<Html<String>, AppError> {
    let (all, live, now) = load_workers(&app).await?;
    let body = format!(
        "<h1>Workers</h1>{}",
        view::live(
            "/part/workers",
            2_000,
            &view::workers_part(&all, &live, now)
        )
    );
    Ok(Html(app.layout("Workers", "workers").page(&body)))
}

async fn workers_part(State(app): State<App>) -> Result<Response, AppError> {
    let (all, live, now) = load_workers(&app).await?;
    Ok(part(view::workers_part(&all, &live, now), 2_000))
}

// ----- schedules -----

async fn load_schedules(app: &App) -> Result<(Vec<queuectl::Schedule>, Timestamp), AppError> {
    app.blocking(|sched| Ok((sched.store().list_schedules()?, sched.now())))
        .await
}

async fn schedules_page(State(app): State<App>) -> Result<Html<String>, AppError> {
    let (all, now) = load_schedules(&app).await?;
    let body = format!(
        "<h1>Schedules</h1>{}",
        view::live("/part/schedules", 5_000, &view::schedules_part(&all, now))
    );
    Ok(Html(app.layout("Schedules", "schedules").page(&body)))
}

async fn schedules_part(State(app): State<App>) -> Result<Response, AppError> {
    let (all, now) = load_schedules(&app).await?;
    Ok(part(view::schedules_part(&all, now), 5_000))
}

// ----- metrics and assets -----

async fn metrics_text(State(app): State<App>) -> Result<Response, AppError> {
    let text = app
        .inner
        .metrics
        .get(&app, |sched| Ok(metrics::Snapshot::gather(sched)?.render()))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        text.as_str().to_owned(),
    )
        .into_response())
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
        .into_response()
}

// ----- actions -----

#[derive(Debug, Deserialize)]
struct JobForm {
    id: String,
}

async fn job_action(
    State(app): State<App>,
    Path(name): Path<String>,
    Form(form): Form<JobForm>,
) -> Result<Redirect, AppError> {
    let action = JobAction::from_name(&name)
        .ok_or_else(|| AppError::NotFound(format!("no job action named {name}")))?;
    let id = JobId::new(form.id);
    let target = id.clone();
    app.blocking(move |sched| Ok(action.apply(sched, &target)?))
        .await?;
    tracing::info!(action = action.name(), job = %id, "dashboard action");
    Ok(Redirect::to(&action.redirect(&job_href(id.as_str()))))
}

async fn bulk_action(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Redirect, AppError> {
    let action = BulkAction::from_name(&name)
        .ok_or_else(|| AppError::NotFound(format!("no action named {name}")))?;
    let n = app.blocking(move |sched| Ok(action.apply(sched)?)).await?;
    tracing::info!(action = action.name(), jobs = n, "dashboard action");
    Ok(Redirect::to(&format!(
        "/jobs?state={}&done={}&n={n}",
        action.offered_on().as_str(),
        action.name()
    )))
}

#[derive(Debug, Deserialize)]
struct QueueForm {
    queue: String,
}

async fn queue_action(
    State(app): State<App>,
    Path(name): Path<String>,
    Form(form): Form<QueueForm>,
) -> Result<Redirect, AppError> {
    let action = QueueAction::from_name(&name)
        .ok_or_else(|| AppError::NotFound(format!("no queue action named {name}")))?;
    let queue = form.queue.clone();
    app.blocking(move |sched| Ok(action.apply(sched, &queue)?))
        .await?;
    tracing::info!(action = action.name(), queue = %form.queue, "dashboard action");
    Ok(Redirect::to("/"))
}
