//! `flagd.evaluation.v2.Service`: flagd's current evaluation service, for RPC
//! providers. Value and variant are absent when there is none.

use std::collections::HashMap;

use prost_types::Struct;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};
use vexil_engine::ValueType;
use vexil_flagd_grpc::evaluation_v2::service_server::Service;
use vexil_flagd_grpc::evaluation_v2::{
    AnyFlag, EventStreamRequest, EventStreamResponse, ResolveAllRequest, ResolveAllResponse,
    ResolveBooleanRequest, ResolveBooleanResponse, ResolveFloatRequest, ResolveFloatResponse,
    ResolveIntRequest, ResolveIntResponse, ResolveObjectRequest, ResolveObjectResponse,
    ResolveStringRequest, ResolveStringResponse, any_flag,
};

use super::evaluation::{AnyValue, resolve, resolve_all, take};
use super::{Grpc, auth, events};

#[tonic::async_trait]
impl Service for Grpc {
    type EventStreamStream = BoxStream<EventStreamResponse>;

    async fn resolve_all(
        &self,
        request: Request<ResolveAllRequest>,
    ) -> Result<Response<ResolveAllResponse>, Status> {
        let answers = resolve_all(self, request.metadata(), request.get_ref().context.as_ref())?;
        let flags: HashMap<String, AnyFlag> = answers
            .into_iter()
            .map(|(key, answer)| {
                let value = answer.value.map(|v| match v {
                    AnyValue::Bool(b) => any_flag::Value::BoolValue(b),
                    AnyValue::String(s) => any_flag::Value::StringValue(s),
                    AnyValue::Double(d) => any_flag::Value::DoubleValue(d),
                    AnyValue::Object(o) => any_flag::Value::ObjectValue(o),
                });
                let flag = AnyFlag {
                    reason: answer.reason,
                    variant: answer.variant,
                    value,
                    metadata: answer.metadata,
                };
                (key, flag)
            })
            .collect();
        Ok(Response::new(ResolveAllResponse {
            flags,
            metadata: None,
        }))
    }

    async fn resolve_boolean(
        &self,
        request: Request<ResolveBooleanRequest>,
    ) -> Result<Response<ResolveBooleanResponse>, Status> {
        let r = request.get_ref();
        let answer = resolve(
            self,
            request.metadata(),
            &r.flag_key,
            r.context.as_ref(),
            ValueType::Bool,
            take::bool,
        )?;
        Ok(Response::new(ResolveBooleanResponse {
            value: answer.value,
            reason: answer.reason,
            variant: answer.variant,
            metadata: answer.metadata,
        }))
    }

    async fn resolve_string(
        &self,
        request: Request<ResolveStringRequest>,
    ) -> Result<Response<ResolveStringResponse>, Status> {
        let r = request.get_ref();
        let answer = resolve(
            self,
            request.metadata(),
            &r.flag_key,
            r.context.as_ref(),
            ValueType::String,
            take::string,
        )?;
        Ok(Response::new(ResolveStringResponse {
            value: answer.value,
            reason: answer.reason,
            variant: answer.variant,
            metadata: answer.metadata,
        }))
    }

    async fn resolve_float(
        &self,
        request: Request<ResolveFloatRequest>,
    ) -> Result<Response<ResolveFloatResponse>, Status> {
        let r = request.get_ref();
        let answer = resolve(
            self,
            request.metadata(),
            &r.flag_key,
            r.context.as_ref(),
            ValueType::Float,
            take::float,
        )?;
        Ok(Response::new(ResolveFloatResponse {
            value: answer.value,
            reason: answer.reason,
            variant: answer.variant,
            metadata: answer.metadata,
        }))
    }

    async fn resolve_int(
        &self,
        request: Request<ResolveIntRequest>,
    ) -> Result<Response<ResolveIntResponse>, Status> {
        let r = request.get_ref();
        let answer = resolve(
            self,
            request.metadata(),
            &r.flag_key,
            r.context.as_ref(),
            ValueType::Int,
            take::int,
        )?;
        Ok(Response::new(ResolveIntResponse {
            value: answer.value,
            reason: answer.reason,
            variant: answer.variant,
            metadata: answer.metadata,
        }))
    }

    async fn resolve_object(
        &self,
        request: Request<ResolveObjectRequest>,
    ) -> Result<Response<ResolveObjectResponse>, Status> {
        let r = request.get_ref();
        let answer = resolve(
            self,
            request.metadata(),
            &r.flag_key,
            r.context.as_ref(),
            ValueType::Object,
            take::object,
        )?;
        Ok(Response::new(ResolveObjectResponse {
            value: answer.value,
            reason: answer.reason,
            variant: answer.variant,
            metadata: answer.metadata,
        }))
    }

    async fn event_stream(
        &self,
        request: Request<EventStreamRequest>,
    ) -> Result<Response<Self::EventStreamStream>, Status> {
        let admitted = auth::admit(self, request.metadata(), "")?;
        Ok(Response::new(events::event_stream(self, admitted, event)))
    }
}

fn event(kind: &str, data: Option<Struct>) -> EventStreamResponse {
    EventStreamResponse {
        r#type: kind.to_owned(),
        data,
    }
}
