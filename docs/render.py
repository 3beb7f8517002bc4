"""Draw the workflow from statemachine/training_gate.asl.json, and the architecture, with Graphviz.

`make docs` runs this. It writes docs/state-machine.png, docs/architecture.png and
docs/state-machine.sha256 (the digest of the ASL the picture was drawn from; a test compares it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from infra.integrations import INTEGRATIONS  # noqa: E402  (no aws_cdk: the names of the ASL's placeholders)

ASL = REPO / "statemachine" / "training_gate.asl.json"
DOCS = REPO / "docs"
STYLE = {
    "Task": 'shape=box style="rounded,filled" fillcolor="#dbe9f6"',
    "Choice": 'shape=diamond style=filled fillcolor="#fff2cc"',
    "Wait": 'shape=box style="rounded,dashed"',
    "Pass": 'shape=box style="rounded"',
    "Fail": 'shape=box style="filled" fillcolor="#f4cccc"',
    "Succeed": 'shape=box style="filled" fillcolor="#d9ead3"',
}


def asl_digest(path: Path = ASL) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


_NUMERIC = {
    "NumericGreaterThan": ">",
    "NumericGreaterThanEquals": ">=",
    "NumericLessThan": "<",
    "NumericLessThanEquals": "<=",
    "NumericEquals": "=",
}


def _condition(rule: dict[str, Any]) -> str:
    """A short label for a Choice rule: the values it compares with."""
    if "Not" in rule:
        inner = rule["Not"]
        if inner.get("IsNull") is True:
            return f"{inner['Variable'].rsplit('.', 1)[-1]} set"
        return "not " + _condition(inner)
    for combinator, joiner in (("Or", " | "), ("And", " & ")):
        if combinator in rule:
            return joiner.join(_condition(r) for r in rule[combinator])
    variable = rule.get("Variable", "").rsplit(".", 1)[-1]
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key.startswith("IsNull"):
            return f"{variable} {'is' if value else 'is not'} null"
        if key.startswith("IsPresent"):
            return f"{variable} {'present' if value else 'absent'}"
        if key.endswith("Path"):
            return f"{variable} < {str(value).rsplit('.', 1)[-1]}"
        if key in _NUMERIC:
            return f"{variable} {_NUMERIC[key]} {json.dumps(value)}"
        return f"{value}" if key.startswith("String") else f"{variable}={json.dumps(value)}"
    return "condition"


def _task_label(name: str, state: dict[str, Any]) -> str:
    resource = state.get("Resource", "")
    placeholder = resource.removeprefix("${").removesuffix("}")
    service = INTEGRATIONS.get(placeholder, resource).removeprefix("aws-sdk:")
    if service.startswith("lambda:invoke") or (resource.startswith("${") and resource.endswith("FunctionArn}")):
        service = "Lambda"
    return f"{name}\\n({service})" if service else name


def state_machine_dot(definition: dict[str, Any]) -> str:
    lines = [
        "digraph training_gate {",
        '  graph [rankdir=TB fontname="Helvetica" fontsize=11 nodesep=0.35 ranksep=0.35 dpi=110];',
        '  node [fontname="Helvetica" fontsize=10];',
        '  edge [fontname="Helvetica" fontsize=8 color="#555555"];',
        '  start [shape=circle label="" width=0.2 style=filled fillcolor=black];',
        f"  start -> {_quote(definition['StartAt'])};",
    ]
    for name, state in definition["States"].items():
        kind = state["Type"]
        label = _task_label(name, state) if kind == "Task" else name
        if kind == "Fail":
            label = f"{name}\\nerror {state.get('Error', '')}"
        lines.append(f"  {_quote(name)} [{STYLE.get(kind, '')} label={_quote(label)}];")
        if "Next" in state:
            lines.append(f"  {_quote(name)} -> {_quote(state['Next'])};")
        for rule in state.get("Choices", []):
            lines.append(f"  {_quote(name)} -> {_quote(rule['Next'])} [label={_quote(_condition(rule))}];")
        if "Default" in state:
            lines.append(f"  {_quote(name)} -> {_quote(state['Default'])} [style=dashed label=default];")
        for catch in state.get("Catch", []):
            if catch["Next"] != state.get("Next"):
                lines.append(f'  {_quote(name)} -> {_quote(catch["Next"])} [style=dotted color="#cc0000"];')
    lines.append("}")
    return "\n".join(lines)


ARCHITECTURE_DOT = """digraph architecture {
  graph [rankdir=LR fontname="Helvetica" fontsize=11 nodesep=0.4 ranksep=0.5 dpi=110];
  node [fontname="Helvetica" fontsize=10 shape=box style="rounded,filled" fillcolor="#dbe9f6"];
  edge [fontname="Helvetica" fontsize=9];
  sagemaker [label="SageMaker\\ntraining job" fillcolor="#fce5cd"];
  tuning [label="SageMaker\\ntuning job" fillcolor="#fce5cd"];
  rule [label="EventBridge rule\\n(this account's Training Job State Change)"];
  tuning_rule [label="EventBridge rule\\n(this account's Tuning Job State Change)"];
  sfn [label="Step Functions\\ntraining_gate.asl.json" fillcolor="#d9d2e9"];
  subgraph cluster_functions { label="Lambda functions"; fontname="Helvetica"; fontsize=10; style=dashed;
    validate [label="ValidateInput"]; describe [label="DescribeTrainingJob"];
    inspect [label="InspectArtifact\\n(container, scikit-learn)"];
    collect [label="CollectMetrics"]; evaluate [label="EvaluatePolicy"]; register [label="RegisterModel"];
    record [label="RecordOutcome"]; failure [label="DescribeFailure"];
    describe_tuning [label="DescribeTuningJob"]; notify [label="NotifyOwners\\n(owner-checked)"];
    answer [label="AnswerPipelines"]; }
  pipeline [label="SageMaker pipeline\\nCallbackStep" fillcolor="#fce5cd"];
  callbacks [label="SQS: callback queue\\n(dead-letter queue)" fillcolor="#fff2cc"];
  start_callback [label="StartCallback\\n(event source mapping)"];
  alert [label="AlertOperations"];
  s3 [label="S3: model.tar.gz,\\nreports, metrics" fillcolor="#fff2cc"];
  logs [label="CloudWatch Logs\\n/aws/sagemaker/TrainingJobs" fillcolor="#fff2cc"];
  ddb [label="DynamoDB\\ndecision table (owner, lifecycle)" fillcolor="#fff2cc"];
  registry [label="Model Registry" fillcolor="#d9ead3"];
  owners [label="SNS: owners\\n(stack key)" fillcolor="#f4cccc"];
  ops [label="SNS: operations\\n(its own key)" fillcolor="#f4cccc"];
  bus [label="EventBridge\\nTraining Gate Decision" fillcolor="#d9ead3"];
  ended [label="EventBridge rule\\n(execution FAILED / TIMED_OUT / ABORTED)"];
  sagemaker -> rule [label="Completed / Failed / Stopped"];
  rule -> sfn [label="{TrainingJobName, account, region}"];
  tuning -> sagemaker [label="launches, with its tags" style=dashed];
  tuning -> tuning_rule [label="Completed / Failed / Stopped"];
  tuning_rule -> sfn [label="{HyperParameterTuningJobName, ...}"];
  sfn -> validate; sfn -> describe; sfn -> inspect; sfn -> collect; sfn -> evaluate; sfn -> register;
  sfn -> record; sfn -> failure; sfn -> describe_tuning; sfn -> notify; describe -> sagemaker [style=dashed];
  describe_tuning -> tuning [style=dashed]; failure -> ddb; notify -> ddb;
  inspect -> s3; collect -> logs; collect -> s3; evaluate -> s3; evaluate -> ddb; register -> ddb;
  register -> registry; register -> bus; record -> bus; record -> ddb;
  notify -> owners [label="reject / inconclusive / training failed"]; notify -> ops [label="skipped"];
  pipeline -> callbacks [label="token + arguments"]; callbacks -> start_callback; start_callback -> sfn;
  sfn -> answer; answer -> ddb; answer -> pipeline [label="SendPipelineExecutionStep*" style=dashed];
  alert -> pipeline [label="what no Catch sees" style=dashed];
  sfn -> ended [style=dashed]; ended -> alert; alert -> ops; alert -> ddb [label="endings"];
  alarms [label="CloudWatch alarms"]; alarms -> ops;
}
"""

LAYERS_DOT = """digraph layers {
  graph [rankdir=LR fontname="Helvetica" fontsize=11 nodesep=0.3 ranksep=0.45 dpi=110 compound=true];
  node [fontname="Helvetica" fontsize=10 shape=box style="rounded,filled" fillcolor="#dbe9f6"];
  edge [fontname="Helvetica" fontsize=9];
  subgraph cluster_code { label="lambdas/training_gate: who may import whom"; fontname="Helvetica"; style=dashed;
    handlers [label="handlers/\\nparse the event, read the environment,\\ncall one use case, dump a model"];
    logic [label="logic/\\none use case per function"];
    domain [label="domain/\\npure: policy, metrics, report,\\ndecision record, the contract" fillcolor="#d9ead3"];
    dal [label="dal/\\none module per AWS service\\n(the only boto3 code)" fillcolor="#fff2cc"];
    inspector [label="inspector/\\nscikit-learn (InspectArtifact only)" fillcolor="#fce5cd"];
    handlers -> logic; logic -> domain; logic -> dal; dal -> domain; logic -> inspector; inspector -> domain;
    inspector -> dal [label="its errors"]; }
  subgraph cluster_contract { label="the contract between the states (domain/contract.py)"; fontname="Helvetica";
    style=dashed; node [shape=box style="filled" fillcolor="#ffffff"];
    v [label="ValidateInput\\n-> GateInput ($.settings)"]; d [label="DescribeTrainingJob\\n-> TrainingJob ($.job)"];
    t [label="DescribeTuningJob\\n-> TuningContext ($.tuning)"];
    f [label="DescribeFailure\\n-> FailureNotice ($.failure)"];
    n [label="NotifyOwners\\n-> Notified ($.notified)"];
    i [label="InspectArtifact\\n-> InspectionResult ($.inspection)"];
    c [label="CollectMetrics\\n-> MetricsSummary ($.metrics)\\nfull MetricsResult in S3"];
    e [label="EvaluatePolicy\\n-> Evaluation ($.evaluation)\\nreport.json in S3"];
    r [label="RegisterModel\\n-> Registration ($.registration)"];
    o [label="RecordOutcome\\n-> Completion ($.completion)"];
    v -> d -> i -> c -> e; v -> t -> d; e -> r; e -> o; o -> n; d -> f -> n; t -> f; }
}
"""


def render(dot_source: str, target: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise SystemExit("Graphviz is needed to draw the pictures: apt-get install graphviz (or brew install graphviz)")
    subprocess.run([dot, "-Tpng", "-o", str(target)], input=dot_source, text=True, check=True)


def main() -> int:
    render(state_machine_dot(json.loads(ASL.read_text())), DOCS / "state-machine.png")
    render(ARCHITECTURE_DOT, DOCS / "architecture.png")
    render(LAYERS_DOT, DOCS / "layers.png")
    (DOCS / "state-machine.sha256").write_text(asl_digest() + "\n")
    print(f"wrote {DOCS / 'state-machine.png'}, {DOCS / 'architecture.png'} and {DOCS / 'layers.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
