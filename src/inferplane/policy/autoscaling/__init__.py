"""The autoscaling policy, pure: `decide(spec, inputs, state) -> Decision`, Knative's KPA.

Nothing here reads a clock, the store or the network: the caller passes the time, the samples
and the state the previous decision returned (`State.to_json()` / `State.from_json()`).

Load. A replica's value of the spec's metric in one Sample: concurrency = running + waiting;
rps; tokensPerSecond; kvCacheUsage; waiting. Per window (stable, panic), the deployment's total
is the time average of all its replicas' load: each sample stands for its replica's load since
that replica's previous sample, and the integral is divided by the span covered (windows.py).
Load moved between replicas by a scale is not a change of load, so a steady load does not
oscillate. The caller passes the samples of the replicas bound in the window (the agent
reports only Ready ones); samples older than the window count nothing. For concurrency, the
requests the gateways hold (each gateway's latest sample in the panic window) are added:
demand no replica sees yet. For rps with nothing ready or starting, the gateways' arrivals over
the window stand in. While replicas are ready or starting but no sample falls in the window,
the load is unknown and the decision keeps `current`.

Sizing. desired = ceil(total / target) per window, bounded per decision by the Ready replicas
r = max(1, len(ready)): [floor(r / maxScaleDownRate), max(current, ceil(r × maxScaleUpRate))].
Outside a panic, a stable answer within 10 % of current keeps current (reactive.TOLERANCE).

Panic. The panic window is over when its unrounded demand / r ≥ panicThreshold (and some
replica is Ready). Over it, panic begins (panic_since) or goes on (panic_last_over = now); it
ends once it has not been over for stableWindowSeconds. While panicking, desired = max(panic
answer, stable answer, the most asked for in this panic): a panic never scales down.

Capacity in flight. Replicas `starting` are not in the base r, so decisions taken while they
start grow by a multiple of what is Ready, never of what was asked for (no 2 -> 4 -> 8 while
none is Ready), and the bound never cuts below current. Latency is measured on Ready replicas
only and cannot see the capacity coming: an objective over target while replicas start holds
current instead of asking for more. A ramp while replicas start does not keep adding replicas.

Latency objectives. The nearest-rank percentile of the Ready replicas' ttft (tpot) samples in
the stable window, against targetSeconds: over target, desired = max(desired, ceil(r × p /
target)); between comfort × target and target, desired = max(desired, current) (hold); under
comfort × target the load decides.

Predictive mode. Each decision records the total (each Ready replica's latest sample in the
stable window, summed; held requests added for concurrency) as the value of now's bucket of
bucketSeconds, keeping historySeconds. Additive Holt-Winters with fixed constants (forecast.py;
level and trend, plus the season once two whole seasons are in the history) forecasts the
total one cold start ahead (coldStartSeconds, else Inputs.cold_start_seconds, else 60 s);
desired = max(desired, ceil(forecast / target)). A forecast never lowers the reactive answer.

Scale to zero (minReplicas 0 only). A desired of 0 stands when no requests are held (latest
per gateway in the stable window) and none arrived for scaleToZeroAfterSeconds (or none was
ever seen); otherwise 1. Scale-down delay: desired = the most recommended over the last
scaleDownDelaySeconds. Scale from zero: at current 0 (or none Ready), a held request asks for
max(1, minReplicas) at once. Last, desired is clamped to [minReplicas, maxReplicas], and the
reason says so; last_scale_time is now when desired differs from current. With autoscaling
disabled, desired = current ("autoscaling disabled").

Modules: samples (Sample, GatewaySample, Inputs), windows (totals), state (State), reactive
(windows and panic), latency (objectives), forecast (Holt-Winters), predictive (history and
forecast), verdicts (a decision in the making), decide (Decision, decide).
"""

from inferplane.policy.autoscaling.decide import Decision, decide
from inferplane.policy.autoscaling.samples import GatewaySample, Inputs, Sample
from inferplane.policy.autoscaling.state import State

__all__ = ["Decision", "GatewaySample", "Inputs", "Sample", "State", "decide"]
