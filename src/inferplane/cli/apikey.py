"""``apikey create|list|rotate|revoke``: API keys, their limits, and their one-time tokens.

The control plane generates a key's token when the ApiKey is created, keeps only its SHA-256
hash, and returns the token once, in the create response; this command prints it then and
never again. ``rotate`` makes a new token here and writes its hash in place of the old one.
Nothing here prints the hash.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from inferplane import client as api_client
from inferplane.api import kinds
from inferplane.cli import errors, limits, listing, options, output, session

apikey_app = typer.Typer(
    name="apikey",
    help="Create, list, rotate and revoke API keys: bearer tokens with a role, rate limits "
    "and budget.",
    no_args_is_help=True,
)

Object = dict[str, Any]
API_VERSION = "inferplane.dev/v1"
_DURATION = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


class Role(StrEnum):
    viewer = "viewer"
    deployer = "deployer"
    admin = "admin"
    agent = "agent"
    gateway = "gateway"
    join_key = "join"  # not `join`: that name is str.join


class Period(StrEnum):
    day = "day"
    month = "month"
    total = "total"


class CreateFormat(StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"


class ListFormat(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, rich_help_panel="Settings")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``45s``: a positive span of time."""
    compact = text.strip().lower()
    if not compact or _DURATION.sub("", compact):
        raise typer.BadParameter(f"{text!r} is not a duration such as 30d, 12h, 1w2d or 90m")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(compact))
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def _positive_cost(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g} is not a cost above 0")
    return value


def _budget(cost: float | None, tokens: int | None, period: Period | None) -> Object:
    """``{"budget": ...}`` for the spec, or nothing when no cap is given."""
    caps = {k: v for k, v in (("cost", cost), ("tokens", tokens)) if v is not None}
    if not caps and period is not None:
        raise errors.UsageError("--budget-period needs --budget-cost or --budget-tokens")
    return {"budget": {**caps, "period": str(period or Period.day)}} if caps else {}


def _expiry(expires_in: timedelta | None) -> Object:
    if expires_in is None:
        return {}
    expires = datetime.now(UTC).replace(microsecond=0) + expires_in
    return {"expiresAt": expires.isoformat().replace("+00:00", "Z")}


def without_hash(obj: Object) -> Object:
    """The object as shown to people and scripts: the token's hash left out."""
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "tokenHash"}
    return {**obj, "spec": spec}


Name = Annotated[str, typer.Argument(help="Name of the API key.", show_default=False)]


@apikey_app.command()
def create(
    ctx: typer.Context,
    name: Name,
    namespace: options.Namespace = None,
    role: Annotated[
        Role,
        typer.Option(
            help="viewer reads; deployer also writes; admin also manages keys. In "
            "inferplane-system only: agent (one cluster's plane), gateway, or join (exchanged "
            "once by a new agent for its agent key)."
        ),
    ] = Role.viewer,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="The cluster an agent key speaks for, the only one a join key may join, or "
            "the plane a gateway key is the edge of (its tunnel carries that plane's traffic).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str, typer.Option(help="What or who the key is for.", show_default=False)
    ] = "",
    rpm: Annotated[
        int | None,
        typer.Option("--rpm", min=1, help="Most requests per minute.", show_default=False),
    ] = None,
    tpm: Annotated[
        int | None,
        typer.Option(
            "--tpm", min=1, help="Most tokens (prompt + generated) per minute.", show_default=False
        ),
    ] = None,
    budget_cost: Annotated[
        float | None,
        typer.Option(
            callback=_positive_cost,
            help="Most cost per budget period, priced by each Service's spec.pricing.",
            show_default=False,
        ),
    ] = None,
    budget_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Most tokens per budget period.", show_default=False),
    ] = None,
    budget_period: Annotated[
        Period | None,
        typer.Option(
            help="When the budget renews: day or month (UTC), or total (never); default day.",
            show_default=False,
        ),
    ] = None,
    expires_in: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="Stop working after this long, e.g. 30d, 12h, 1w2d; default never.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        CreateFormat,
        typer.Option(
            "--output", "-o", help="text, or the created object (token included) as json or yaml."
        ),
    ] = CreateFormat.text,
) -> None:
    """Create an API key and print its token, once: the control plane keeps only its hash.

    Examples:

    inferplane apikey create ci-bot
    inferplane apikey create chat-app -n team-a --role deployer --rpm 60 --tpm 100000
    inferplane apikey create intern --budget-cost 5 --budget-period month --expires-in 30d
    inferplane apikey create join-eu-1 -n inferplane-system --role join --cluster eu-1 --expires-in 2h
    inferplane apikey create gateway-eu -n inferplane-system --role gateway
    TOKEN=$(inferplane apikey create ci -o json | jq -r .status.token)
    """  # noqa: E501
    rates = {k: v for k, v in (("requestsPerMinute", rpm), ("tokensPerMinute", tpm)) if v}
    spec: Object = {"role": str(role), "description": description, "rateLimits": rates}
    if cluster:
        spec["cluster"] = cluster
    with errors.reported(), session.of(ctx).client() as client:
        spec |= _budget(budget_cost, budget_tokens, budget_period) | _expiry(expires_in)
        metadata = {"name": name, "namespace": namespace or client.namespace}
        # No spec.tokenHash: the control plane generates the token and answers it this once.
        obj = {"apiVersion": API_VERSION, "kind": "ApiKey", "metadata": metadata, "spec": spec}
        created = without_hash(client.create(obj))
    token = (created.get("status") or {}).get("token")
    if not token:
        typer.echo("error: the control plane returned no token for the new key", err=True)
        raise typer.Exit(errors.EXIT_FAILURE)
    _print_token(created, token, output_format, done="created")


def _print_token(key: Object, token: str, output_format: CreateFormat, *, done: str) -> None:
    if output_format is CreateFormat.json:
        sys.stdout.write(output.to_json(key))
    elif output_format is CreateFormat.yaml:
        sys.stdout.write(output.to_yaml([key]))
    else:
        _say_token(key, token, done)


def _say_token(key: Object, token: str, done: str) -> None:
    spec = key.get("spec") or {}
    where = f"{output.namespace_of(key)}/{output.name_of(key)}"
    expires = spec.get("expiresAt") or "never"
    typer.echo(f"apikey/{output.name_of(key)} {done} (namespace {output.namespace_of(key)})")
    typer.echo(f"  role {spec.get('role')}; rate {limits.rates_text(spec.get('rateLimits'))};")
    typer.echo(f"  budget {limits.budget_text(spec.get('budget'))}; expires {expires}")
    typer.echo(f"\ntoken of {where}:\n\n  {token}\n")
    typer.echo("This token will not be shown again: store it now (the server keeps only its hash).")
    typer.echo("Send it as a bearer token, e.g.:\n")
    typer.echo(f'  curl $GATEWAY/v1/models -H "Authorization: Bearer {token}"')


@apikey_app.command("list")
def list_keys(
    ctx: typer.Context,
    namespace: options.Namespace = None,
    all_namespaces: options.AllNamespaces = False,
    output_format: Annotated[
        ListFormat,
        typer.Option(
            "--output", "-o", help="table, wide (adds expiry and description), json, yaml."
        ),
    ] = ListFormat.table,
) -> None:
    """List API keys: role, token prefix, limits, usage this budget period, last use.

    USED is the cost and tokens spent in the current budget period (UTC day or month, or in
    total). Tokens and their hashes are never shown.

    Examples:

    inferplane apikey list
    inferplane apikey list -A -o wide
    inferplane apikey list -n team-a -o json
    """
    info = kinds.API_KEY
    with errors.reported(), session.of(ctx).client() as client:
        scope = options.scope(info, namespace, all_namespaces, client.namespace)
        keys = [without_hash(key) for key in client.list(info.kind, namespace=scope).items]
    if not keys and output_format is not ListFormat.json:
        where = f" in {scope} namespace" if scope else ""
        typer.echo(f"No API keys found{where}.", err=True)
        return
    shown = None if output_format is ListFormat.table else options.OutputFormat(output_format)
    listing.Printer(info, shown, all_namespaces=all_namespaces).objects(keys)


@apikey_app.command()
def rotate(
    ctx: typer.Context,
    name: Name,
    namespace: options.Namespace = None,
    expires_in: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="The new token stops working after this long, e.g. 30d; default: the key's "
            "expiry stays as it is.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        CreateFormat,
        typer.Option(
            "--output", "-o", help="text, or the key (new token included) as json or yaml."
        ),
    ] = CreateFormat.text,
) -> None:
    """Give an API key a new token and print it, once; the old token stops working at once.

    Role, limits, budget and usage stay with the key. The control plane and every gateway
    follow ApiKeys through their watches, so the old token is refused (401) within moments
    of the write; there is no grace period: roll the new token out first where a client
    cannot be paused, or create a second key and revoke the first once clients moved.

    Examples:

    inferplane apikey rotate ci-bot
    inferplane apikey rotate chat-app -n team-a --expires-in 90d
    TOKEN=$(inferplane apikey rotate ci -o json | jq -r .status.token)
    """
    from inferplane.control import auth  # the token format has one home: the control plane's

    token = auth.new_token()
    with errors.reported(), session.of(ctx).client() as client:
        where = namespace or client.namespace
        live = _existing(client, name, where)
        spec = {"tokenHash": auth.hash_token(token), "tokenPrefix": token[:12]}
        # Pinned to what was read: a concurrent rotate fails (409) instead of being lost.
        version = {"resourceVersion": live["metadata"].get("resourceVersion")}
        patch = {"metadata": version, "spec": spec | _expiry(expires_in)}
        rotated = without_hash(client.patch(kinds.API_KEY.kind, name, patch, namespace=where))
    rotated.setdefault("status", {})["token"] = token
    _print_token(rotated, token, output_format, done="rotated")


def interactive() -> bool:
    """Whether a person can answer a question: stdin is a terminal."""
    return sys.stdin.isatty()


@apikey_app.command()
def revoke(
    ctx: typer.Context,
    name: Name,
    namespace: options.Namespace = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revoke an API key: delete it, so its token stops working.

    The control plane and every gateway follow ApiKeys through their watches, so requests with
    the token are refused (401) within seconds. Asks first unless --yes is given or stdin is
    not a terminal.

    Examples:

    inferplane apikey revoke ci-bot
    inferplane apikey revoke chat-app -n team-a --yes
    """
    with errors.reported(), session.of(ctx).client() as client:
        where = namespace or client.namespace
        key = _existing(client, name, where)
        if not yes and interactive() and not _confirmed(key, where):
            typer.echo("not revoked", err=True)
            raise typer.Exit(errors.EXIT_FAILURE)
        client.delete(kinds.API_KEY.kind, name, namespace=where)
    typer.echo(f"apikey/{name} revoked")


def _existing(client: api_client.Client, name: str, namespace: str) -> Object:
    try:
        return client.get(kinds.API_KEY.kind, name, namespace=namespace)
    except api_client.NotFound as exc:
        raise errors.UsageError(
            f"no API key {name!r} in namespace {namespace!r} "
            f"(see them with: inferplane apikey list -n {namespace})"
        ) from exc


def _confirmed(key: Object, namespace: str) -> bool:
    spec = key.get("spec") or {}
    prefix = spec.get("tokenPrefix") or "?"
    question = (
        f"Revoke apikey {namespace}/{output.name_of(key)} "
        f"(role {spec.get('role')}, token {prefix}...)? Clients using it will be refused"
    )
    return typer.confirm(question, default=False)
