//! `flagd.sync.v1.FlagSyncService` for in-process providers: `SyncFlags`
//! sends the environment's flagd document at once on connect and again
//! after every new version; `FetchAllFlags` sends it once; `GetMetadata`
//! (deprecated) is `UNIMPLEMENTED`, which providers tolerate.

use std::time::Duration;

use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};
use vexil_flagd_grpc::sync_v1::flag_sync_service_server::FlagSyncService;
use vexil_flagd_grpc::sync_v1::{
    FetchAllFlagsRequest, FetchAllFlagsResponse, GetMetadataRequest, GetMetadataResponse,
    SyncFlagsRequest, SyncFlagsResponse,
};

use super::events::{Next, Watch};
use super::{Grpc, auth};

/// A SyncFlags stream looks at the installed version at least this often,
/// in case a version was installed without a change event.
const RECHECK: Duration = Duration::from_secs(5);

#[tonic::async_trait]
impl FlagSyncService for Grpc {
    type SyncFlagsStream = BoxStream<SyncFlagsResponse>;

    async fn sync_flags(
        &self,
        request: Request<SyncFlagsRequest>,
    ) -> Result<Response<Self::SyncFlagsStream>, Status> {
        let admitted = auth::admit(self, request.metadata(), &request.get_ref().selector)?;
        tracing::debug!(
            provider = %request.get_ref().provider_id,
            environment = %admitted.env.label(),
            "flagd sync stream opened"
        );
        let watch = Watch::new(&self.plane, admitted);
        let documents = self.documents.clone();
        let first = response(&documents.get(&watch.current).json);
        let first = futures_util::stream::once(async move { Ok(first) });
        let rest = futures_util::stream::unfold(Some(watch), move |watch| {
            let documents = documents.clone();
            async move {
                let mut watch = watch?;
                loop {
                    match watch.next(RECHECK).await {
                        Next::Changed(_, new) => {
                            let doc = documents.get(&new);
                            return Some((Ok(response(&doc.json)), Some(watch)));
                        }
                        Next::Idle => continue,
                        Next::End(status) => return Some((Err(status), None)),
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(futures_util::StreamExt::chain(
            first, rest,
        ))))
    }

    async fn fetch_all_flags(
        &self,
        request: Request<FetchAllFlagsRequest>,
    ) -> Result<Response<FetchAllFlagsResponse>, Status> {
        let admitted = auth::admit(self, request.metadata(), &request.get_ref().selector)?;
        let doc = self.documents.get(&admitted.env);
        Ok(Response::new(FetchAllFlagsResponse {
            flag_configuration: doc.json.clone(),
        }))
    }

    async fn get_metadata(
        &self,
        _request: Request<GetMetadataRequest>,
    ) -> Result<Response<GetMetadataResponse>, Status> {
        Err(Status::unimplemented(
            "GetMetadata is deprecated in flagd and not served by Vexil",
        ))
    }
}

fn response(json: &str) -> SyncFlagsResponse {
    SyncFlagsResponse {
        flag_configuration: json.to_owned(),
        sync_context: None,
    }
}
