"""What the slurm runtime renders for a replica: the sbatch options, the batch script (gang
srun, gang variables, the token read from its file), and that no value a tenant writes can
add an sbatch option or run shell.

The quoting tests run the rendered words through bash itself (`bash -c`, no Slurm): what
bash makes of them is the claim, and no reading of the text could prove it as well.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.agent import recipes
from inferplane.agent.runtime import base, probes, slurm
from inferplane.agent.runtime.registry import RuntimeOptions
from inferplane.agent.runtime.slurm import jobs, pools, queue, runtime, script
from inferplane.api import fleet, replicas
from tests.unit.agent.samples import bound_spec

DATA = Path("/shared/agent")
FILES = script.JobFiles.of(DATA, "ns/chat")
HOSTILE = (
    "x'; touch /tmp/pwned; '",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "a\n#SBATCH --partition=evil\ntouch /tmp/pwned",
    'say "hi" \\ ${HOME} %j',
    "\r\x1b[2J\t",
)


def launch(**fields: Any) -> base.Launch:
    values: dict[str, Any] = {
        "name": "ns/chat",
        "command": ("/opt/py", "-m", "engine", "--port={port}"),
        "env": script.Resources(gpus=2, cpus=4, memory_mib=16384).to_env(),
        **fields,
    }
    return base.Launch(**values)


def argv(made: base.Launch, **spec: Any) -> list[str]:
    return script.sbatch_argv(
        made, spec=fleet.SlurmRuntimeSpec(**spec), files=FILES, workdir=DATA, agent="a1"
    )


# --- sbatch options ------------------------------------------------------------------------


def test_the_sbatch_options_come_from_the_settings_and_the_resources() -> None:
    got = argv(launch(nodes=2), partition="gpu", account="ml-team", timeLimitMinutes=90)
    assert got[0] == "sbatch" and got[-1] == str(FILES.script)
    for option in (
        "--parsable", "--job-name=inferplane-ns-chat",
        "--comment=inferplane agent=a1 replica=ns/chat",
        f"--output={DATA}/logs/ns_chat.log", "--open-mode=append", f"--chdir={DATA}",
        "--requeue", "--nodes=2", "--ntasks-per-node=1", "--partition=gpu",
        "--account=ml-team", "--time=90", "--signal=TERM@60", "--gres=gpu:2",
        "--cpus-per-task=4", "--mem=16384M",
    ):  # fmt: skip
        assert option in got


def test_unset_settings_and_requests_add_no_option() -> None:
    got = argv(launch(env={}))
    assert not [o for o in got if o.startswith(("--partition", "--account", "--time"))]
    assert not [o for o in got if o.startswith(("--gres", "--cpus-per-task", "--mem"))]
    assert "--nodes=1" in got


def test_a_short_time_limit_warns_the_engine_half_way() -> None:
    assert "--signal=TERM@30" in argv(launch(), timeLimitMinutes=1)


def test_a_percent_in_the_data_dir_is_not_a_slurm_pattern() -> None:
    files = script.JobFiles.of(Path("/data/100%j"), "ns/chat")
    got = script.sbatch_argv(
        launch(), spec=fleet.SlurmRuntimeSpec(), files=files, workdir=DATA, agent="a1"
    )
    assert "--output=/data/100%%j/logs/ns_chat.log" in got


def test_the_resources_are_the_replicas_requests_per_node() -> None:
    spec = replicas.ReplicaSpec.model_validate(
        bound_spec(resources={"devices": [{"count": 2}], "cpu": "1500m", "memory": "1.5Gi"})
    )
    assert script.Resources.of(spec.resources) == script.Resources(2, 2, 1536)
    assert script.Resources.of(replicas.ReplicaSpec.model_validate(bound_spec()).resources) == (
        script.Resources(0, None, None)
    )


def test_a_name_that_is_not_namespace_slash_name_is_refused() -> None:
    with pytest.raises(script.ScriptError):
        argv(launch(name="ns/chat --partition=evil"))
    with pytest.raises(script.ScriptError):
        script.job_name("../etc")


def test_the_comment_names_the_agent_and_the_replica() -> None:
    text = script.comment("ns/chat-0", "a1")
    assert script.parse_comment(text) == ("a1", "ns/chat-0")
    assert script.parse_comment("someone else's job") is None
    assert script.parse_comment("inferplane agent=a1 replica=evil|x") is None


# --- the batch script ----------------------------------------------------------------------


def test_a_gang_runs_one_member_per_node_under_srun() -> None:
    text = script.batch_script(launch(nodes=2), FILES)
    srun = text.strip().splitlines()[-1]
    assert srun.startswith("srun --export=ALL --nodes=2 --ntasks=2 --ntasks-per-node=1")
    assert "--kill-on-bad-exit=1" in srun and "--cpus-per-task=4" in srun
    assert srun.endswith("/bin/bash -c inferplane_member")
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1' in text
    assert "export -f inferplane_member" in text


def test_members_get_the_gang_variables_of_member_env() -> None:
    made = launch(nodes=2)
    out = run_member(made, procid=1, leader="10.0.0.7", port=31000)
    expected = made.member_env(1, leader_host="10.0.0.7", leader_port=31000)
    assert {key: out["env"].get(key) for key in expected} == expected
    ipv6 = run_member(made, procid=0, leader="fd00::7", port=31000)
    assert ipv6["env"][base.GANG_LEADER_URL] == "http://[fd00::7]:31000"


def test_a_single_node_replica_gets_no_gang_variables() -> None:
    out = run_member(launch(), procid=0, leader="10.0.0.7", port=31000)
    assert base.GANG_WORKER_INDEX not in out["env"]


def test_the_port_fills_the_command_and_the_args_stay_as_written() -> None:
    made = launch(args=("--literal={port}", "x y"))
    out = run_member(made, procid=0, leader="h", port=31000)
    assert out["argv"] == ["--port=31000", "--literal={port}", "x y"]


def test_a_fixed_port_is_the_replicas() -> None:
    text = script.batch_script(launch(port=8123), FILES)
    assert "port=8123" in text.splitlines()
    assert "RANDOM" not in text


def test_the_token_is_read_from_its_file_and_never_written(tmp_path: Path) -> None:
    files = script.JobFiles.of(tmp_path, "ns/chat")
    made = launch(env={"API_KEY": base.TOKEN}, command=(*launch().command, base.TOKEN))
    made = dataclasses.replace(made, token="s3cret-token")
    text = script.batch_script(made, files)
    assert "s3cret-token" not in text
    assert "s3cret-token" not in " ".join(argv(made))
    files.token.parent.mkdir(parents=True)
    files.token.write_text("s3cret-token")
    out = run_member(made, procid=0, leader="h", port=1, files=files)
    assert out["env"]["API_KEY"] == "s3cret-token"
    assert out["argv"][-1] == "s3cret-token"


def test_the_reserved_variables_do_not_reach_the_engine() -> None:
    out = run_member(launch(env={**launch().env, "MODE": "x"}), procid=0, leader="h", port=1)
    assert out["env"]["MODE"] == "x"
    assert script.GPUS_ENV not in out["env"]


# --- hostile values ------------------------------------------------------------------------


def test_hostile_args_and_env_reach_the_engine_verbatim_and_run_nothing(tmp_path: Path) -> None:
    env = {f"V{i}": value for i, value in enumerate(HOSTILE)}
    made = launch(args=HOSTILE, env={**launch().env, **env}, command=(*launch().command, *HOSTILE))
    out = run_member(made, procid=0, leader="h", port=1, cwd=tmp_path)
    assert out["argv"] == ["--port=1", *HOSTILE, *HOSTILE]
    assert {key: out["env"][key] for key in env} == env
    assert not Path("/tmp/pwned").exists()


def test_no_tenant_value_starts_a_line_of_the_script() -> None:
    made = launch(args=HOSTILE, env={"EVIL": HOSTILE[3]})
    plain = script.batch_script(launch(args=("a",), env={"EVIL": "b"}), FILES).splitlines()
    lines = script.batch_script(made, FILES).splitlines()
    assert len(lines) == len(plain)  # every value stays on the line it is on
    assert not [line for line in lines if line.lstrip().startswith("#SBATCH")]
    assert not [option for option in argv(made) if "evil" in option or "pwned" in option]


def test_a_bad_variable_name_or_a_nul_byte_is_refused() -> None:
    with pytest.raises(script.ScriptError):
        script.batch_script(launch(env={"A B": "x"}), FILES)
    with pytest.raises(script.ScriptError):
        script.batch_script(launch(args=("a\x00b",)), FILES)


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@given(st.lists(TEXT, max_size=8))
def test_a_shell_word_is_the_text_itself_to_bash(texts: list[str]) -> None:
    words = " ".join(script.shell_word(text) for text in texts)
    done = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {words}" if texts else "true"],
        capture_output=True,
        check=True,
    )
    got = done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]
    assert got == texts


# --- squeue, sacct, sinfo ------------------------------------------------------------------


def test_squeue_rows_parse_with_a_comment_that_holds_the_delimiter() -> None:
    text = (
        "12|RUNNING|None|0|1|n[1-2]|inferplane agent=a1 replica=ns/chat|\n"
        "13|FAILED|NonZeroExitCode|768|0|n3|someone's | job|\n"
        "garbage\n"
    )
    running, failed = queue.parse_squeue(text)
    assert running == queue.Job("12", "RUNNING", "None", 0, 1, "n[1-2]", running.comment)
    assert script.parse_comment(running.comment) == ("a1", "ns/chat")
    assert failed.comment == "someone's | job"
    assert failed.ending() == queue.Ending("13", "FAILED", code=3, signal=None)


def test_endings_say_why_the_job_ended() -> None:
    assert queue.Ending("7", "FAILED", code=3).describe() == "Slurm job 7 FAILED (exit code 3)"
    killed = queue.Ending("7", "FAILED", code=0, signal=9).describe()
    assert killed == "Slurm job 7 FAILED (killed by SIGKILL)"
    assert queue.Ending("7", "TIMEOUT").describe() == "Slurm job 7 TIMEOUT (its time limit)"
    assert "not by this agent" in queue.Ending("7", "CANCELLED").describe()
    assert queue.Ending("7", "NODE_FAIL").describe() == "Slurm job 7 NODE_FAIL"
    assert "neither squeue nor sacct" in queue.Ending("7", "").describe()


def test_sacct_rows_parse() -> None:
    found = queue.parse_sacct("7|CANCELLED by 0|0:15\n8|OUT_OF_MEMORY|0:125\n")
    assert found["7"] == queue.Ending("7", "CANCELLED", code=0, signal=15)
    assert found["8"].state == "OUT_OF_MEMORY"


def test_gres_lists_parse_into_gpus_by_type() -> None:
    assert queue.parse_gres("gpu:a100:4(S:0-1),gpu:v100:2") == (("a100", 4), ("v100", 2))
    assert queue.parse_gres("gpu:2,mps:100") == (("", 2),)
    assert queue.parse_gres("(null)") == ()


def test_one_pool_per_node_shape() -> None:
    nodes = queue.parse_sinfo(
        "g1|64|512000|gpu:h100:8(S:0-1)|idle\n"
        "g2|64|512000|gpu:h100:8(S:0-1)|mixed\n"
        "g1|64|512000|gpu:h100:8(S:0-1)|idle\n"  # listed again for a second partition
        "c1|32|128000|(null)|idle\n"
        "g3|32|256000|gpu:h100:4|idle\n"
    )
    found = {plan.name: plan.spec for plan in pools.plans(nodes)}
    assert set(found) == {"cpu", "gpu-h100-4x-32c-250g", "gpu-h100-8x-64c-500g"}
    big = found["gpu-h100-8x-64c-500g"]
    assert big["nodeCount"] == 2 and big["cpu"] == "64" and big["memory"] == "512000Mi"
    assert big["devicesPerNode"] == [
        {"name": "gpu", "count": 8, "driver": "gpu.nvidia.com", "capacity": {},
         "attributes": {"type": "gpu", "productName": "H100", "slurmGresType": "h100"}},
    ]  # fmt: skip
    for spec in found.values():
        fleet.PoolSpec.model_validate({**spec, "cluster": "hpc"})


# --- decisions about one job (virtual time) ------------------------------------------------


def probed(job: jobs.ReplicaJob, result: probes.ProbeResult, now: float) -> str | None:
    return jobs.probed(job, result, now, period=5.0, startup_period=0.5, failure_threshold=3)


def test_a_probe_turns_the_engine_ready_and_three_silent_ones_cancel_its_job() -> None:
    job = jobs.ReplicaJob(launch(), job_id="12")
    assert probed(job, "unreachable", 100.0) is None and not job.ready  # still starting
    assert job.next_probe == 100.5
    assert probed(job, "ok", 101.0) is None and job.ready
    assert probed(job, "unreachable", 106.0) is None
    assert probed(job, "unreachable", 111.0) is None
    assert probed(job, "unreachable", 116.0) == "failed 3 liveness probes of /health"


def test_an_engine_answering_but_not_200_is_taken_out_of_ready() -> None:
    job = jobs.ReplicaJob(launch(), job_id="12", ready=True)
    for now in (1.0, 2.0):
        assert probed(job, "unhealthy", now) is None and job.ready
    assert probed(job, "unhealthy", 3.0) is None and not job.ready
    assert job.message == "/health stopped answering 200"


def test_the_message_says_why_the_job_waits_or_backs_off() -> None:
    row = queue.Job("12", "PENDING", "Resources", None, 0, "", "")
    waiting = jobs.ReplicaJob(launch(), job_id="12", seen=row)
    assert jobs.message(waiting, "Starting", 0.0) == "Slurm job 12 PENDING: Resources"
    ended = jobs.ReplicaJob(launch(), next_submit=14.0, message="Slurm job 12 FAILED: boom")
    looping = jobs.message(ended, "CrashLoopBackOff", 10.0)
    assert looping == "back-off 4s restarting failed engine: Slurm job 12 FAILED: boom"


def test_adoption_binds_the_recorded_job_else_the_newest() -> None:
    rows = [queue.Job(i, "RUNNING", "None", 0, 0, "n1", "") for i in ("9", "12", "10")]
    assert jobs.choose(rows, "10") is rows[2]
    assert jobs.choose(rows, "7") is rows[1]
    assert jobs.choose([], "7") is None


# --- the runtime's launch ------------------------------------------------------------------


def test_the_launch_asks_slurm_for_the_devices_and_leaves_their_choice_to_it(
    tmp_path: Path,
) -> None:
    made = slurm_runtime(tmp_path).launch_for(
        base.Replica("ns/chat", spec(resources={"devices": [{"count": 2}], "cpu": "3"}))
    )
    assert "CUDA_VISIBLE_DEVICES" not in made.env  # Slurm sets it on the node it picks
    assert script.Resources.from_env(made.env) == script.Resources(2, 3, None)
    assert "--host" in made.command and "0.0.0.0" in made.command


def test_a_changed_request_changes_the_fingerprint(tmp_path: Path) -> None:
    one = slurm_runtime(tmp_path).launch_for(
        base.Replica("ns/chat", spec(resources={"devices": [{"count": 1}]}))
    )
    two = slurm_runtime(tmp_path).launch_for(
        base.Replica("ns/chat", spec(resources={"devices": [{"count": 2}]}))
    )
    assert one.fingerprint() != two.fingerprint()


def test_a_tenant_cannot_set_the_reserved_variables(tmp_path: Path) -> None:
    engine = {"recipe": "reference", "env": {script.GPUS_ENV: "64"}}
    with pytest.raises(recipes.LaunchError, match="reserves"):
        slurm_runtime(tmp_path).launch_for(base.Replica("ns/chat", spec(engine=engine)))


def test_a_gang_of_a_recipe_that_runs_none_is_refused(tmp_path: Path) -> None:
    model = {"name": "m", "version": "v1", "source": f"file://{tmp_path}"}
    gang = spec(engine={"recipe": "vllm"}, resources={"nodes": 2}, model=model)
    with pytest.raises(recipes.LaunchError, match="single-node"):
        slurm_runtime(tmp_path).launch_for(base.Replica("ns/chat", gang))


def test_build_reads_the_clusters_spec_slurm(tmp_path: Path) -> None:
    options = RuntimeOptions(tmp_path, settings={"partition": "gpu", "timeLimitMinutes": 5})
    assert slurm.settings_of(options).spec == fleet.SlurmRuntimeSpec(
        partition="gpu", timeLimitMinutes=5
    )
    assert slurm.build(options).kind == "slurm"
    with pytest.raises(slurm.SettingsError, match="partition"):
        slurm.settings_of(RuntimeOptions(tmp_path, settings={"partition": "a b"}))


# --- helpers -------------------------------------------------------------------------------


def spec(**fields: Any) -> replicas.ReplicaSpec:
    return replicas.ReplicaSpec.model_validate(bound_spec(devices=[], **fields))


def slurm_runtime(tmp_path: Path) -> runtime.SlurmRuntime:
    return runtime.SlurmRuntime(runtime.SlurmSettings(tmp_path), environ={})


DUMP = "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}))"


def run_member(
    made: base.Launch,
    *,
    procid: int,
    leader: str,
    port: int,
    files: script.JobFiles = FILES,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Run the script's member function in bash, as srun would on a node, with the engine
    replaced by a Python that prints its argv and environment."""
    dumped = dataclasses.replace(made, command=(sys.executable, "-c", DUMP, *made.command[3:]))
    text = script.batch_script(dumped, files)
    lines = text.splitlines()
    start = lines.index("inferplane_member() {")
    function = "\n".join(lines[start : lines.index("}", start) + 1])
    env = {"SLURM_PROCID": str(procid), script.LEADER_VAR: leader, script.PORT_VAR: str(port)}
    done = subprocess.run(
        ["bash", "-c", f"{function}\ninferplane_member"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result
