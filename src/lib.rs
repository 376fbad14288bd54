//! The access-management server: settings in, a listening GraphQL server out.
//! `main.rs` adds the command line; end-to-end tests start it on port 0.

pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use access_api::AccessService;
use access_domain::identifiers::OrganizationId;
use access_notifications::Sender;
use access_projections::{EmailHandoff, OrganizationNames, Projector, ProjectorOptions};
use access_reference::{ReferenceData, ReferenceDataError};
use access_store::{Database, StoreError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use settings::{Settings, SettingsError, TokenKey};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("ACCESS_REFERENCE_DATA: {0}")]
    ReferenceData(#[from] ReferenceDataError),
    #[error("DATABASE_URL: cannot open the event store: {0}")]
    Database(#[from] StoreError),
    #[error("ACCESS_LISTEN: cannot listen on {address}: {error}")]
    Listen {
        address: SocketAddr,
        error: std::io::Error,
    },
}

/// A server accepting connections.
pub struct RunningServer {
    pub address: SocketAddr,
    pub database: String,
    pub reference_version: String,
    /// Keeps the views up to date while the server runs; stopped with it.
    pub projector: Projector,
    pub handle: JoinHandle<std::io::Result<()>>,
}

/// Notifications name organizations as the reference data does.
struct ReferenceNames(Arc<ReferenceData>);

impl OrganizationNames for ReferenceNames {
    fn legal_name(&self, organization: &OrganizationId) -> Option<String> {
        self.0
            .organization(organization)
            .map(|record| record.legal_business_name.clone())
    }
}

impl std::fmt::Debug for ReferenceNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReferenceNames({})", self.0.version())
    }
}

/// Loads the reference data, opens and migrates the database, starts the
/// projector (catch-up, then following the log) and the email sender, and
/// starts serving. Returns once the listener is bound; the server stops when
/// `shutdown` completes, after finishing the requests in flight, and the
/// projector and the sender with it (the sender after the email in hand).
pub async fn start(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, StartError> {
    let verifier = settings.token_verifier()?;
    if matches!(settings.token_key, TokenKey::Development) {
        tracing::warn!(
            "ACCESS_DEV_AUTH=1: accepting tokens signed with the PUBLISHED development secret. \
             Anyone can sign in as anyone. Never use this outside a local trial."
        );
    }
    let reference = match &settings.reference_data {
        Some(path) => ReferenceData::load(path)?,
        None => ReferenceData::demo(),
    };
    let reference_version = reference.version().to_string();
    let database = Database::connect(&settings.database_url).await?;
    let described = database.describe();
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|error| StartError::Listen {
                address: settings.listen,
                error,
            })?;
    let address = listener.local_addr().map_err(|error| StartError::Listen {
        address: settings.listen,
        error,
    })?;
    let reference = Arc::new(reference);
    let (email_handoff, emails_handed) = EmailHandoff::new(settings.mail.sender.claim);
    let projector = Projector::start(
        database.clone(),
        ProjectorOptions {
            organization_names: Some(Arc::new(ReferenceNames(reference.clone()))),
            email_handoff: Some(email_handoff),
            ..ProjectorOptions::default()
        },
    );
    if settings.mail.smtp.is_none() {
        tracing::info!("ACCESS_SMTP_URL is not set: notification emails are written to the log");
    }
    let sender = Sender::start(
        database.clone(),
        settings.mail,
        projector.applied(),
        Some(emails_handed),
    );
    let service = AccessService::new(
        database,
        reference,
        projector.clone(),
        settings.cached_events,
    );
    let app = access_api::router(service, verifier, settings.max_requests);
    let serving = projector.clone();
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        serving.shutdown().await;
        sender.shutdown().await;
        served
    });
    Ok(RunningServer {
        address,
        database: described,
        reference_version,
        projector,
        handle,
    })
}
