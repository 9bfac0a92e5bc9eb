"""The Service and Endpoint kinds: one model name on the gateway, and the addresses behind it.

A Service routes by weight to Deployments (through their Endpoints, wherever the replicas run)
or to external OpenAI-compatible upstreams (Endpoints with external: true).
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from inferplane.api import errors, meta, values
from inferplane.api.secrets import SecretKey

RoutingStrategy = Literal["round-robin", "least-request", "power-of-two", "session", "prefix-aware"]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,255}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def check_model_name(name: str) -> str:
    if not _MODEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a model name: letters, digits and ._:/@+- up to 256")
    return name


def check_header_name(name: str) -> str:
    if not _HEADER.match(name):
        raise ValueError(f"{name!r} is not an HTTP header name")
    return name.lower()


ModelName = Annotated[str, AfterValidator(check_model_name)]
"""A model name as OpenAI clients send it, e.g. llama-3-8b or meta-llama/Llama-3.1-8B."""


class Route(meta.Model):
    """One weighted target of a service: a deployment, or an external endpoint."""

    deployment: meta.DnsLabel | None = None
    """Name of a Deployment in the namespace; its ready Endpoints take the traffic."""
    endpoint: meta.DnsLabel | None = None
    """Name of an external Endpoint in the namespace (give deployment or endpoint, not both)."""
    weight: int = Field(1, ge=0, le=1_000_000)
    """Share of traffic relative to the other routes' weights; 0 sends none."""

    @model_validator(mode="after")
    def _one_target(self) -> Route:
        if (self.deployment is None) == (self.endpoint is None):
            message = "give exactly one of deployment or endpoint"
            raise errors.field_error("deployment", message=message)
        return self

    def target(self) -> str:
        """The route's target as kind/name, e.g. deployment/chat."""
        if self.deployment is not None:
            return f"deployment/{self.deployment}"
        return f"endpoint/{self.endpoint}"


class Timeouts(meta.Model):
    """How long the gateway waits on an upstream."""

    connectSeconds: values.Seconds = 5.0
    """To open a connection to an upstream."""
    firstByteSeconds: values.Seconds = 120.0
    """From sending the request to the first byte of the answer (queueing and prefill)."""
    idleSeconds: values.Seconds = 60.0
    """Between two chunks of a streamed answer."""
    requestSeconds: values.Seconds = 900.0
    """For the whole request, streaming included."""
    scaleFromZeroSeconds: values.Seconds = 600.0
    """A request to a deployment at zero replicas is held this long for one to become ready."""


class Retries(meta.Model):
    """How the gateway recovers from a failed upstream."""

    attempts: int = Field(2, ge=0, le=10)
    """Retries on another replica when an upstream fails before the first byte."""
    resumeStreams: bool = True
    """Resume a stream broken after its first byte on another replica, from the prompt plus
    the tokens already sent."""


class Pricing(meta.Model):
    """What a service's tokens cost, for cost budgets and the gateway's cost metric."""

    inputPer1kTokens: float = Field(0.0, ge=0)
    """Price of 1,000 prompt tokens, in the fleet's currency (USD unless you say otherwise)."""
    outputPer1kTokens: float = Field(0.0, ge=0)
    """Price of 1,000 generated tokens."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of one request's usage."""
        return (
            prompt_tokens * self.inputPer1kTokens + completion_tokens * self.outputPer1kTokens
        ) / 1000


class Fallback(meta.Model):
    """One step of a fallback chain: another service, or an external endpoint.

    A bare string is shorthand for `{service: NAME}`.
    """

    service: meta.DnsLabel | None = None
    """A Service in the same namespace, routed with its own routes and strategy."""
    endpoint: meta.DnsLabel | None = None
    """An external Endpoint in the same namespace (give service or endpoint, not both)."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"service": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_target(self) -> Fallback:
        if (self.service is None) == (self.endpoint is None):
            raise errors.field_error("service", message="give exactly one of service or endpoint")
        return self

    def target(self) -> str:
        """The step as kind/name, e.g. service/chat-small."""
        if self.service is not None:
            return f"service/{self.service}"
        return f"endpoint/{self.endpoint}"


class FallbackTriggers(meta.Model):
    """When the gateway goes to the fallback chain before this service has failed outright.

    Errors that survive retries, and having no ready endpoint, always take the chain; these
    bounds also skip a service that is up but unhealthy.
    """

    errorRate: float | None = Field(0.5, ge=0, le=1)
    """Skip the service while its recent error rate is at or above this; null never."""
    p99LatencySeconds: values.Seconds | None = None
    """Skip the service while its recent p99 time to first byte is above this; null never."""
    windowSeconds: values.Seconds = 30.0
    """How far back "recent" reaches."""
    minRequests: int = Field(20, ge=1)
    """Fewer requests than this in the window never trigger (too few to judge)."""


class ServiceSpec(meta.Model):
    """One OpenAI model name: its routes, how to pick a replica, and what to do on failure."""

    modelName: ModelName | None = None
    """The name clients pass as `model`; defaults to metadata.name."""
    routes: list[Route] = Field(min_length=1)
    """Weighted targets; traffic splits across them by weight (canary, A/B, migration)."""
    strategy: RoutingStrategy = "least-request"
    """How to pick an endpoint within a route: round-robin, least-request, power-of-two (of two
    random endpoints the less loaded), session (sticky by sessionHeader), or prefix-aware (the
    endpoint most likely to hold the prompt's prefix in its KV cache)."""
    sessionHeader: Annotated[str, AfterValidator(check_header_name)] = "x-session-id"
    """Header whose value pins a client to one endpoint with the session strategy."""
    fallback: list[Fallback] = Field(default_factory=list)
    """Services or external endpoints to try in order, in the same namespace, when this one
    fails, has no ready endpoint, or crosses a bound in fallbackWhen."""
    fallbackWhen: FallbackTriggers = Field(default_factory=FallbackTriggers)
    """Health bounds that send traffic down the fallback chain early."""
    pricing: Pricing = Field(default_factory=Pricing)
    """Price per 1k input and output tokens; cost budgets and metrics use it."""
    timeouts: Timeouts = Field(default_factory=Timeouts)
    """How long to wait on upstreams."""
    retries: Retries = Field(default_factory=Retries)
    """Retries and stream resumption."""

    @model_validator(mode="after")
    def _unique_routes(self) -> ServiceSpec:
        seen: set[str] = set()
        for i, route in enumerate(self.routes):
            if route.target() in seen:
                raise errors.field_error("routes", i, message=f"{route.target()} is routed twice")
            seen.add(route.target())
        if not any(route.weight for route in self.routes):
            raise errors.field_error("routes", message="at least one route needs a weight above 0")
        return self


class ServiceStatus(meta.Status):
    """How many endpoints can take traffic."""

    readyEndpoints: int = Field(0, ge=0)
    """Endpoints that are ready, over every route."""


class Service(meta.Resource[ServiceSpec, ServiceStatus]):
    """One model name on the gateway: weighted routes, routing strategy, fallbacks, retries."""

    KIND: ClassVar[str] = "Service"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Service"] = "Service"
    """Always Service."""
    spec: ServiceSpec
    """Model name, routes, strategy, timeouts and retries."""
    status: ServiceStatus = Field(default_factory=ServiceStatus)
    """Endpoint counts, written by the control plane."""

    def served_name(self) -> str:
        """The name clients pass as `model`."""
        return self.spec.modelName or self.metadata.name


class SecretRef(meta.Model):
    """Where the gateway finds a secret: a key of a Secret in the Endpoint's own namespace, or
    (only where the operator allowlisted it on the control plane and the gateway) an
    environment variable or file of the gateway."""

    name: meta.DnsLabel | None = None
    """A Secret in the Endpoint's namespace (give `key` with it)."""
    key: SecretKey | None = None
    """The key within that Secret."""
    env: values.EnvName | None = None
    """An environment variable of the gateway process; refused unless allowlisted with
    `--allow-secret-env` on the control plane and the gateway."""
    file: str | None = None
    """A file on the gateway's host; refused unless allowlisted with `--allow-secret-file`."""

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        given = [s for s in (self.name, self.env, self.file) if s is not None]
        if len(given) != 1:
            raise errors.field_error("name", message="give exactly one of name, env or file")
        if (self.name is None) != (self.key is None):
            raise errors.field_error("key", message="name and key go together")
        return self


class EndpointSpec(meta.Model):
    """A routable address: a ready replica's engine, or an external upstream."""

    url: values.HttpUrl
    """Root URL; the gateway appends the API path, e.g. http://10.0.0.5:8001 or
    https://api.openai.com."""
    external: bool = False
    """True for an upstream outside inferplane (written by users, not the control plane)."""
    deployment: meta.DnsLabel | None = None
    """Deployment of the replica behind this endpoint."""
    replica: meta.DnsLabel | None = None
    """Replica behind this endpoint; required unless external."""
    cluster: meta.DnsLabel | None = None
    """Cluster the replica runs on."""
    region: meta.LabelValue = ""
    """Region of the cluster or upstream, for locality-aware routing; '' if unknown."""
    upstreamModel: ModelName | None = None
    """Model name to send upstream in place of the client's; unset passes it unchanged."""
    apiKeySecretRef: SecretRef | None = None
    """Where the gateway finds the upstream's API key, for external endpoints."""
    engineTokenSecret: meta.DnsLabel | None = None
    """Set by the control plane on a replica's Endpoint, never accepted from a client: the
    Secret in inferplane-system (engine-<replica uid>) holding the token the engine requires;
    the gateway sends it as `Authorization: Bearer` in place of anything the client sent."""

    @model_validator(mode="after")
    def _replica_unless_external(self) -> EndpointSpec:
        if not self.external and self.replica is None:
            raise errors.field_error("replica", message="set replica, or external: true")
        if self.external and self.replica is not None:
            raise errors.field_error("replica", message="an external endpoint has no replica")
        return self


class EndpointStatus(meta.Status):
    """Whether the gateway may send traffic here."""

    ready: bool = False
    """True when the replica is Ready (or, for an external endpoint, its last probe passed)."""


class Endpoint(meta.Resource[EndpointSpec, EndpointStatus]):
    """One routable address of a ready replica, or an external OpenAI-compatible upstream."""

    KIND: ClassVar[str] = "Endpoint"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Endpoint"] = "Endpoint"
    """Always Endpoint."""
    spec: EndpointSpec
    """The address and what is behind it."""
    status: EndpointStatus = Field(default_factory=EndpointStatus)
    """Readiness, written by the control plane."""
