"""`hera-flows step triage-classify`: put a failure into one class, with the evidence lines that decided it.

The rule table below is the documentation (docs/patterns/failure-triage.md prints the same table). Each rule
matches one *source* of evidence with a regular expression, written for an error family as the upstream projects
print it (Kubernetes, Argo, Kueue, Slurm, Airflow, PyTorch, TensorFlow, JAX, Ray, Spark, the cloud SDKs and CLIs,
docker and the registries), not for one report:

- ``status``: what Kubernetes and Argo said — node and workflow messages, container termination and waiting
  reasons, Warning events, unschedulable conditions (the context's ``evidence`` lines);
- ``exception``: the final line (``Type: message``) of each Python traceback in a failing container's log tail
  (``FileNotFoundError: [Errno 2] ...``) and the few lines its message continues on (NCCL's ``Last error:`` /
  ``Cuda failure 'out of memory'``; read by the rules, indented in the evidence, never an exception of their
  own), the ``what()`` of a C++ exception that terminated the process (``c10::DistBackendError: ... Watchdog
  caught collective operation timeout``), or, when no traceback ends in an exception line, a line that is an
  error by itself (``torch.OutOfMemoryError: CUDA out of memory...``, ``psycopg2.errors.UndefinedTable: ...``),
  read with the lines its message continues on as well.
  An orchestrator's exception that quotes Kubernetes' verdict (Airflow's ``Pod returned a failure: ... reason
  Evicted``, the Kubernetes client's ``exceeded quota``) is read for that verdict before the code-bug fallback.
  A ``KeyError`` names only the key: when a tabular data library raised it (the nearest frame above is the own
  code of pandas, Hugging Face datasets, pyarrow or polars) and the key is a string, the line says so
  (``KeyError: 'label' (raised by pandas)``): the key is a column the input does not have (an integer key is a row
  position, a code bug);
- ``log``: any line of a failing container's log tail, then the status lines read as log lines (a cloud job's
  failure reason — SageMaker, Vertex AI, Azure ML — or an Argo message often quotes the process's last error);
- ``hint``: a status line that says little by itself (``1 Worker replica(s) failed``, ``pod deleted``, a pod
  that stayed ``Pending``, an exit code 137 with no reason, GNU timeout's exit status 124, a pod drained through the
  Eviction API or deleted after its node was gone, a cluster autoscaler that could not add a GPU node).

Log lines are read as they really look: ANSI colours and the prefixes that launchers and log collectors put
before each line (timestamps, the CRI log format's ``stderr F``, torchrun's ``[rank0]:``, mpirun's
``[1,0]<stderr>:``, Ray's ``(RayTrainWorker pid=12)``, Metaflow's ``[run/step/task (pid 12)]``, docker compose's
``service-1  |``, vLLM's ``ERROR 11-18 18:07:28 [engine.py:366]``, a quoted paste's ``>``) are taken off, a
docker json-file line (``{"log":"...","stream":"stderr"}``) is read as its ``log``, a line pasted as
```inline code``` loses its backticks, ``\r``-redrawn progress keeps its last state, a tqdm bar that the next
output was glued onto is cut off, text glued before ``Traceback (most recent call last):`` becomes a line of its
own, and a traceback logged indented inside another message is dedented. A traceback is read to its exception
line even when its frames lost their indentation (a source line such as ``x: int = f()`` is not an exception:
exception types are class names), when the tail was cut inside it (it counts from its first ``File "..."``
frame), in IPython's ``KeyError    Traceback (...)`` form, and through a wrapper that names its cause
(``RayTaskError(OutOfMemoryError)``: the cause's own final line too).

The sources are consulted in tiers, most telling first — ``status``, then ``exception``, then ``log``, then
``hint`` — and within a tier the classes are tried in ``PRIORITY`` order; the first class with a matching rule
wins. The reasoning behind the order:

- what Kubernetes said beats what the process printed: a container the kernel OOM-killed beats the traceback
  it left behind; an image that could not be pulled beats the "Step exceeded its deadline" that later
  overwrote the node message; a log line never overrules a traceback. A bare exit code 137 (SIGKILL) is only a
  hint: a deadline kills with it too, so an explicit deadline message or anything the process printed decides;
- the node going away explains everything after it: ``preemption`` and ``eviction`` come first, preemption
  before eviction (Kueue and the scheduler report a preempted workload as ``Evicted`` with reason
  ``Preempted``; the kubelet's node-pressure eviction never says preempted);
- the scheduler's verdict comes before anything the pod could have printed (``gpu-unschedulable`` before
  ``unschedulable``: a shortage of GPUs or other accelerators, or of GPU quota, is the specific cause), and the
  cluster autoscaler's "it wouldn't fit if a new node is added", a pod seen only as ``Pending`` or volumes that
  never attached are only hints (what the scheduler said about the existing nodes decides);
- memory before what memory pressure broke: ``gpu-oom`` before ``oom`` (GPU memory is specific; TensorFlow's
  "OOM when allocating" on a CPU device is host memory), both before ``distributed`` (the rank that ran out of
  memory is why the others' collectives timed out, and NCCL's "Cuda failure 'out of memory'" is GPU memory);
- ``distributed`` before ``network``: a NCCL or Gloo line that says "connection refused/reset" is the job's
  ranks losing each other, not an unreachable service; ``network`` before ``image-pull``: a pull that timed
  out is a reachability problem, not a bad reference; a 404 is a missing object, not an unreachable host;
- ``image-pull`` before ``permissions``: a registry that refuses a pull ("denied", "401 Unauthorized" on a
  manifest or from its token service, also when Knative resolves a tag to a digest) is a bad reference or missing
  pull credentials, which the image-pull fix names;
- the generic ones last: ``timeout`` and ``infrastructure`` (a runtime call's gRPC ``DeadlineExceeded`` is the
  runtime's, not the step deadline, and a sandbox or container the runtime failed to create in time is the node's,
  not the network's; a GPU hook that cannot load the driver is the node's, not the image's — but an ``executable
  file not found in $PATH`` is the image's, ``dependency``, unless the missing executable is the node's container
  runtime), then the input and code classes
  (``data-missing`` before ``schema-drift``: a missing file is not a changed one), ``code-bug`` at the very end, and
  only for the code's own programming errors (a type, attribute, name, index or key error, an assertion, a variable
  used before it is set; a ValueError, RuntimeError or TensorFlow error whose message is a shape, dtype or device
  mismatch). Any other exception — a library's own error type, ``OSError``, a Java/Py4J wrapper, a bare
  ``RuntimeError`` or ``Exception`` with another message — is ``unknown`` with its evidence: a wrong class sends the
  wrong fix, ``unknown`` sends the evidence to the owner (or the coding agent). An exception that only reports that
  another process or task died or was cancelled (torchrun's ``ChildFailedError``, ``CalledProcessError``, Ray's
  ``RayActorError``, papermill's ``PapermillExecutionError``, asyncio's ``CancelledError``, a DataLoader worker that
  "exited unexpectedly", transformers' "Failed to import ... because of the following error", ...) is not a code bug
  even when its message quotes a mismatch: the cause is looked for in the other exceptions and the log. A tensor
  shape mismatch printed without its exception line (TensorFlow's graph errors) is a code bug read from the log;
- a Slurm job cancelled with no reason given is only a hint (``preemption``: scancel or a requeue, a rerun either
  way); a reason it states (time limit, preemption, requeue, node failure) decides.

Nothing matching is ``unknown``: never a guessed class. A process that died with no word of why (Ray's "the actor
died unexpectedly", "a worker died or was killed by an unexpected system error") stays ``unknown``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hera_flows.steps import naming
from hera_flows.steps.common import StepError, log, parse_json
from hera_flows.steps.contract import Step

CATEGORIES = ("oom", "gpu-oom", "eviction", "image-pull", "network", "gpu-unschedulable", "unschedulable",
              "preemption", "distributed", "timeout", "infrastructure", "data-missing", "schema-drift",
              "permissions", "dependency", "code-bug", "unknown")
PRIORITY = ("preemption", "eviction", "gpu-unschedulable", "unschedulable", "gpu-oom", "oom", "distributed",
            "network", "image-pull", "timeout", "infrastructure", "permissions", "dependency", "data-missing",
            "schema-drift", "code-bug")
TIERS = (("status",), ("exception",), ("log",), ("hint",))
MAX_EVIDENCE = 12
BRANCH_PREFIX = "failure-triage"
_EXC = r"^([\w.]+\.)?"  # an exception's module path, e.g. torch.cuda. or botocore.exceptions.


@dataclass(frozen=True)
class Rule:
    category: str
    source: str  # status | exception | log | hint
    pattern: str
    means: str
    cause: str = ""  # a cause within the class that has its own fix (the editor reads it)

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text) is not None


# how an unreachable host reads in Go (kubelet, containerd, Argo), Python (urllib3, requests, botocore), curl
_NET = (r"i/o timeout|connection refused|connection reset|connection timed out|TLS handshake timeout|no such host|"
        r"dial tcp|network is unreachable|no route to host|context deadline exceeded|"
        r"temporary failure in name resolution|name or service not known|could not resolve host|read timed out|"
        r"failed to establish a new connection|request canceled while waiting for connection|"
        r"net/http: request canceled|"
        r"Client\.Timeout exceeded")
# what DataLoader workers, NCCL and torch's shared tensors print when /dev/shm is full or too small (not Ray's
# notice that its object store uses /tmp because /dev/shm is small)
_SHM = (r"^(?!.*(object store|plasma))(?:.*(insufficient shared memory|/dev/shm|\bshm\b|Bus error|\bSIGBUS\b|"
        r"exitcode\s*:\s*-7\b|killed by signal: Bus\b|shared memory (object|segment)|(?i:out of shared memory)|"
        r"unable to (write to|open|mmap)( \d+ bytes from)? file </torch_))")
# an accelerator the scheduler counts as an extended resource: nvidia.com/gpu, nvidia.com/mig-1g.5gb, amd.com/gpu,
# google.com/tpu, aws.amazon.com/neuron, habana.ai/gaudi, tencent.com/vcuda-core, ...
_ACCELERATOR = r"[\w.-]+/[\w.-]*(?i:gpu|cuda|mig-|tpu|neuron|gaudi)"
# a GPU-sharing scheduler extender that found no device to fit: HAMi's FilteringFailed event ("no available node,
# all node scores do not meet", "<n> nodes CardInsufficientMemory(node-a,...)") and its reason codes
# (Project-HAMi/HAMi pkg/device/common/common.go, pkg/scheduler/scheduler.go); tkestack/gpu-admission's quota
# filter puts "ExceedsGPUQuota" against each node it rejects
_VGPU_SCHEDULER = (r"no available node, (all node scores|\d+ nodes) do not meet|\bExceedsGPUQuota\b|"
                   r"\b(CardInsufficient(Memory|Core)|CardTimeSlicingExhausted|CardComputeUnitsExhausted|"
                   r"NodeInsufficientDevice|AllocatedCardsInsufficientRequest|CardTypeMismatch|CardUuidMismatch|"
                   r"CardMigTopologyInfeasible|NumaNotFit|ExclusiveDeviceAllocateConflict)\b|"
                   r"request devices nums cannot exceed the total number of devices")
_GPU = (r"(?i:insufficient (nvidia|amd|gpus?)\b)|(?i:insufficient )" + _ACCELERATOR +
        r"|(?i:insufficient (unused )?quota for )" + _ACCELERATOR + r"|(exceeded|failed) quota.*\b" + _ACCELERATOR +
        r"|Quota '\w*GPUS\w*' exceeded|(ResourceLimitExceeded|InsufficientInstanceCapacity|"
        r"ZONE_RESOURCE_POOL_EXHAUSTED|does not have enough resources available).*"
        r"(\b(ml\.)?(p[2-5]|g[3-6])\w*\.\d*x?large\b|(?i:nvidia|gpu|tpu))|" + _VGPU_SCHEDULER + "|"
        # the kubelet's admission of a pod whose GPUs are taken ("OutOfnvidia.com/gpu", pkg/kubelet/lifecycle
        # predicate.go: "OutOf" + the resource name); Google Cloud's quota refusals for GPU metrics ("The following
        # quota metrics exceed quota limits: aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus", AI
        # Platform's "The request for 2 K80 accelerators exceeds the allowed maximum"); a scheduler that says it has
        # no GPUs (KAI: "didn't have enough resources: GPUs", "No node in the default node-pool has
        # nvidia.com/mig-1g.5gb resources"); Slurm refusing a generic resource (GRES: GPUs) its nodes do not define;
        # SkyPilot's optimizer and provisioner, which print an accelerator request as {'A100': 8}; Ray's vSphere
        # provider ("No enough unused GPU cards on host ...", python/ray/autoscaler/_private/vsphere/gpu_utils.py)
        r"\bOutOf" + _ACCELERATOR + r"|exceed quota limits: \S*(?i:gpu|tpu)|"
        r"request for \d+ \w+ accelerators exceeds the allowed maximum|didn't have enough resources: GPUs|"
        r"(?i:no node\b.{0,60}\bhas )" + _ACCELERATOR + r"|Invalid generic resource \(gres\) specification|"
        r"(No resource satisfying|No launchable resource found|ResourcesUnavailableError\b.{0,300}?)"
        r"[^{}]{0,200}\{'[\w-]+': [\d.]+\}|(?i:no enough (unused |available )?GPU cards)|"
        # Karpenter's provisioner: no instance type of the nodepool offers the GPUs ("no instance type satisfied
        # resources {...,\"nvidia.com/gpu\":\"2\",...}": kubernetes-sigs/karpenter pkg/controllers/provisioning)
        r"no instance type satisfied resources \{[^}]*?" + _ACCELERATOR)
# torch's CPU allocator, in TH ("$ Torch: not enough memory: you tried to allocate %dGB. Buy new RAM!", and
# "reallocate" in THRealloc: torch/torch7 lib/TH/THGeneral.c) and c10 ("DefaultCPUAllocator: not enough memory: you
# tried to allocate %d bytes", pytorch c10/core/impl/alloc_cpu.cpp); a GPU's allocator says "CUDA out of memory"
_CPU_ALLOCATOR = r"(?i:not enough memory: you tried to (re)?allocate)|DefaultCPUAllocator: can't allocate memory"
# the host's memory, not a GPU's: TensorFlow names the device or allocator
_CPU_DEVICE = r"device:CPU|allocator cpu|\(cpu\)|mklcpu"
# exceptions that only report that another process or task died, was cancelled or exited: the cause is elsewhere
# (so is an exception whose message only says that a worker "exited unexpectedly")
_WRAPPERS = (r"ChildFailedError|CalledProcessError|RayActorError|ActorDiedError|WorkerCrashedError|NodeDiedError|"
             r"RaySystemError|KilledWorker|PapermillExecutionError|DatasetGenerationError|BrokenProcessPool|"
             r"CancelledError|KeyboardInterrupt|ProcessRaisedException|ProcessExitedException|ExecutionException|"
             r"TrainingFailedError|SystemExit")
# an exception whose message says its cause is printed below it (transformers' lazy import: "Failed to import
# transformers.models.x because of the following error (look up to see its traceback):" + the import's own error)
_CAUSE_BELOW = r"because of the following error"
SHARED_MEMORY = "the job's processes ran out of shared memory (/dev/shm: 64Mi in a pod unless a volume is mounted)"
GPU_MEMORY = "the GPU ran out of memory (batch size, sequence length, activations)"
HOST_MEMORY = "the process was killed for memory (the kernel OOM killer, Ray's or Dask's memory monitor)"
LOST_EACH_OTHER = "the processes of a distributed job lost each other (NCCL or Gloo collectives, rank desync)"
NO_ACCESS = "a credential is missing or lacks a permission (object store, registry, API, file system)"
UNREACHABLE = "a network dependency (object store, model hub, API, database) was unreachable: usually a flake"
NOT_IN_IMAGE = "the image does not hold what the code needs (a module, a library, a CUDA or package version)"
MISSING_INPUT = "an input file, object or table does not exist"
SCHEMA_CHANGED = "the input exists but its schema changed (a column disappeared or changed type)"
BAD_IMAGE = "the container image cannot be pulled (wrong tag or digest, missing image, registry credentials)"
EVICTED = "the kubelet evicted the pod for node pressure (memory or disk), typically one with a low or no request"
RECLAIMED = "the node was reclaimed or the pod preempted (spot, node shutdown, a higher priority)"
DEADLINE = "a step, workflow or batch job ran past its deadline (activeDeadlineSeconds, a task timeout, a time limit)"
NO_NODE = "no node can take the pod (CPU, memory, node selector or affinity, taints, volumes, quota)"
NODE_FAILED = "the node or the container runtime failed the pod (node loss, runtime error, GPU fault, admission)"
# how a registry refuses a reference: kubelet's reasons, the Docker registry API's manifest paths and error codes,
# docker, buildkit; Knative's tag-to-digest resolution ("Unable to fetch image %q: failed to resolve image to digest:
# ...", knative/serving pkg/reconciler/revision) with the registry's refusal in it; a registry's token service
# (Docker token auth "?scope=repository:...", nvcr.io's /proxy_auth that enroot queries, GitLab's /jwt/auth, Harbor's
# /service/token) answering 401/403 or DENIED; the OCI distribution spec's error codes; Slurm's pyxis/enroot import
_REGISTRY = (r"\b(ImagePullBackOff|ErrImagePull|InvalidImageName|ErrImageNeverPull)\b|(?i:failed to pull image)|"
             r"Back-off pulling image|(?i:image pull failed)|trying and failing to pull image|"
             r"manifest unknown|manifest for \S+ not found|"
             r"pull access denied|repository does not exist|repository \S+ not found|no pull access|"
             r"failed to resolve reference|failed to solve: \S+: \S+: not found|no basic auth credentials|"
             r"unauthorized: authentication required|Error response from daemon: (unauthorized|denied)|"
             r"toomanyrequests|pull rate limit|no matching manifest for|invalid reference format|"
             r"couldn't parse image reference|"
             r"(/v2/\S+/manifests/\S+|\[manifests [^\]]+\]|reading manifest \S+ in \S+|load metadata for \S+)"
             r".{0,200}(?i:\b(denied|unauthori[sz]ed|forbidden|not found|unknown|401|403|404)\b)|"
             r"(?i:(Unable to fetch image|failed to resolve image to digest)\b.{0,300}"
             r"\b(denied|unauthori[sz]ed|forbidden|not found|401|403|404)\b)|"
             r"(scope=repository|/proxy_auth\b|/jwt/auth\b|/service/token\b).{0,200}"
             r"(?i:\b(denied|unauthori[sz]ed|forbidden|401|403)\b)|"
             r"\b(MANIFEST_UNKNOWN|NAME_UNKNOWN|NAME_INVALID|TAG_INVALID)\b|pyxis: failed to import docker image|"
             # containerd's resolver (used by buildkit) asking the registry's token service for a pull token
             # ("failed to fetch anonymous token: unexpected status: 401 Unauthorized", remotes/docker/auth)
             r"failed to fetch (anonymous|oauth) token: unexpected status: (401|403)")
# how a scheduler says no node fits: Kubernetes (resources, affinity, taints, volumes, quota, LimitRange, kubelet
# admission), Volcano and Kueue (gang, quota), Slurm
_SCHEDULER = (r"(?i:insufficient (cpu|memory|ephemeral-storage|pods|hugepages))|"
              r"didn't match (Pod's )?node (affinity|selector)|didn't match pod (anti-)?affinity|"
              r"had (untolerated )?taints? \{|that the pod didn't tolerate|volume node affinity conflict|"
              r"unbound (immediate )?PersistentVolumeClaims|didn't find available persistent volumes|"
              r"no persistent volumes available for this claim|\bFailedBinding\b|non-bound phase|"
              r"(exceeded|failed) quota|FailedScheduling|(?i:\bunschedulable\b)|Cannot schedule pods|"
              r"0/\d+ nodes are available|No nodes are available that match|didn't have enough resource|"
              r"\bOutOf(cpu|memory|pods|ephemeral-storage)\b|maximum (cpu|memory) usage per (Container|Pod) is|"
              r"couldn't assign flavors|(?i:insufficient (unused )?quota)|(?i:pod ?group\b.*\bnot ready)|"
              r"Requested node configuration is not available|(?i:violates accounting/QOS policy)|"
              r"(?i:could not schedule pod, incompatible with (nodepool|provisioner))|\bReqNodeNotAvail\b")
# cloud capacity and resource quotas that keep a job from starting (SageMaker, EC2, GCE)
_CAPACITY = (r"ResourceLimitExceeded|InsufficientInstanceCapacity|ZONE_RESOURCE_POOL_EXHAUSTED|"
             r"does not have enough resources available to fulfill the request|Quota '\w+' exceeded\. Limit")
# how a missing input is worded when no error code says it: "File x does not exist", "Unable to find 'x'", "File x
# not found." (LLaMA-Factory, many loaders; not the runtime's "executable file not found", not a column), Beam's
# "No files matched spec" and GcsUtil's "Unable to match files in bucket %s, prefix %s." (apache/beam
# sdks/java/extensions/google-cloud-platform-core .../GcsUtil.java), datasets' "No (supported) data files found"
_MISSING = (r"(?i:\b(file|path|directory|folder|bucket|object|blob|table|dataset)\b.{0,120}"
            r"\b(does not|doesn't) exist|"
            r"(could not|couldn't|unable to|cannot|can't) find (the |a |any )?"
            r"(file|path|directory|dataset|data files?)\b|"
            r"unable to find '[^']+'|no file named .{0,200} found|"
            r"^(?!.*(executable file not found|command not found|\bcolumns?\b)).*"
            r"\b(file|path|directory|folder|data ?set|data file)s?\b.{0,160}\b(was |were )?not found\b|"
            r"No files matched spec|Unable to match files in bucket|"
            r"no (\(supported\) |supported )?data files (or dataset script )?found)|"
            # Keras' load_model (keras/saving/save.py: "No file or directory found at {filepath}"), HDF5's open
            # ("unable to open file: name = '...', errno = 2"), the datasets library's DataFilesNotFoundError
            r"No file or directory found at|unable to open file: name = .{0,300}errno = 2\b|\bDataFilesNotFoundError\b|"
            # MLflow's tracking store for a run or model that is not there ("Run '%s' not found",
            # RESOURCE_DOES_NOT_EXIST: mlflow/store/tracking)
            r"\bRESOURCE_DOES_NOT_EXIST\b|\bRun (with id=)?'?[\w-]+'? not found")
# a command the image lacks (the step's own, not a container runtime the node lacks: 'exec:
# "nvidia-container-runtime": executable file not found' is the node's)
_IMAGE_LACKS = (r"(?!.*\b(nvidia-container-runtime(-hook)?|runc|crun|runsc|kata-runtime|youki)\\?\"?: "
                r"executable file not found).*executable file not found")
# what a GPU or the node under it says when the hardware or its driver fails (not the job's fault)
_GPU_FAULT = (r"uncorrectable ECC error|\bECC error|GPU is lost|fallen off the bus|\bXid\b|"
              r"Unable to determine the device handle for GPU|"
              r"Failed to initialize NVML|could not select device driver|nvidia-container-cli: \w+ error")

# the kubelet's node-pressure eviction, and a training operator's job condition that reports its pods' (the MPI
# operator's reason "MPIJobEvicted", message "%d/%d workers are evicted": kubeflow/mpi-operator
# pkg/controller/mpi_job_controller.go@cbe4f8aab9445f80bdae60868a040f59a3863c81, counted from pod reason Evicted)
_KUBELET_EVICTED = (r"\bEvicted\b|was low on resource|exceeds its request of|ephemeral local storage usage exceeds|"
                    r"exceeded its local ephemeral storage limit|Usage of EmptyDir volume .* exceeds the limit|"
                    r"The node had condition: \[(Memory|Disk|PID)Pressure\]|\b[A-Z]\w*JobEvicted\b|"
                    r"\b\d+/\d+ (workers|replicas|pods) (are|were) evicted\b|"
                    # the kubelet's eviction manager (pkg/kubelet/eviction/eviction_manager.go: "eviction manager:
                    # attempting to reclaim %v", "Eviction manager: attempting to reclaim" since structured logging,
                    # its "EvictionThresholdMet" event, its node conditions under pressure)
                    # and the admission it refuses under pressure ("node has conditions: [DiskPressure]")
                    r"\bEvictionThresholdMet\b|"
                    r"(?i:eviction manager: )(attempting to reclaim|.*\b(Memory|Disk|PID)Pressure\b)|"
                    r"node has conditions: \[\w*Pressure")
# a VM or cluster in the cloud's PREEMPTED state (SkyPilot: "TPU VM ... is in PREEMPTED state"); Google Batch's reserved
# exit code for a Spot VM preemption ("... due to Spot VM preemption with exit code 50001", as Cromwell's GCP Batch
# backend matches it): read in status and log lines alike
_CLOUD_PREEMPTED = r"\bin PREEMPTED state\b|Spot VM preemption|\bexit (status|code)\b\D{0,5}50001\b"
# a node reclaimed (spot, preemptible, graceful node shutdown) or a workload preempted (scheduler, Kueue, Slurm):
# also the spot interruption handlers' own words — Karpenter's interruption controller ("initiating delete from
# interruption message", messageKind spot_interrupted / SpotInterruptionKind, aws/karpenter-provider-aws
# pkg/controllers/interruption), the AWS Node Termination Handler ("Spot ITN received. Instance will be interrupted
# at ...", aws/aws-node-termination-handler pkg/monitor/spotitn) — and Slurm's requeue of a preempted job
# ("*** JOB %u ON %s CANCELLED AT %s DUE TO JOB REQUEUE ***", SchedMD/slurm src/slurmd/slurmstepd/req.c)
_PREEMPTED = (r"\b(Preempted|Preempting|NodeShutdown|PreemptionByScheduler)\b|Node is shutting|"
              r"(?i:(reason|status):?\s+Shutdown\b)|^\S+\s+\d+/\d+\s+Shutdown\s|instances\.preempted|"
              r"(?i:node shutdown|spot instance|spot[ _-]?(instance[ _-]?)?interrupt|\bpre-?empted\b|"
              r"\bPreemptionError\b|termination is imminent|host EC2 (\(instance [\w-]+\) )?terminated|"
              r"spot (vm|node|instance)s?\b.{0,40}evict|preemptible\b.*\b(reclaimed|terminated)|DUE TO PREEMPTION|"
              r"DUE TO JOB REQUEUE|delete from interruption message|TerminatingOnInterruption|Spot ITN\b)|"
              # dstack's job termination reason for a spot instance the cloud took back
              # (dstackai/dstack src/dstack/_internal/core/models/runs.py: JobTerminationReason)
              r"\bINTERRUPTED_BY_NO_CAPACITY\b|" +
              # the clouds' own verdicts (_CLOUD_PREEMPTED); the Pipelines API's preemption as Cromwell reads it
              # (broadinstitute/cromwell PipelinesApiAsyncBackendJobExecutionActor: JES code 14 "VM ... stopped
              # unexpectedly", "The assigned worker has failed to complete the operation", "failed to start due to
              # preemption") and its v2 worker termination
              _CLOUD_PREEMPTED + "|"
              r"\b14: VM \S+ stopped unexpectedly|The assigned worker has failed to complete the operation|"
              r"failed to start due to preemption|Execution failed: worker was terminated|"
              # HTCondor vacating a job from its execute slot (its user log's JobEvictedEvent, "Job was evicted."),
              # PBS Pro's scheduler preempting a job ("Simulation: preempting job" in tracejob)
              r"\bJobEvictedEvent\b|\bJob was evicted\b|(?i:\bpreempting job\b)|"
              # kube-scheduler deletes a running pod only to preempt it (an audit log's delete by the scheduler)
              r"\"verb\":\"delete\".{0,400}\"username\":\"system:kube-scheduler\"")
# a node that died under a Ray job ("The actor is dead because its node has died. Node Id: ...",
# ray-project/ray src/ray/gcs/gcs_server/gcs_actor_manager.cc; "Task failed due to the node dying." /
# "Task failed due to the node (where this task was running)  was dead or unavailable",
# src/ray/core_worker/task_manager.cc) or a Slurm job ("DUE TO NODE FAILURE"); a preempted node says so and is
# preemption, which is tried first
_NODE_DIED = (r"because its node has died|Task failed due to the node (dying|\(where this task was running\))|"
              r"(has|mistakenly) bee[nm] marked (as )?dead|raylet exited immediately because the Ray agent failed|"
              r"missed too many heartbeats|DUE TO NODE FAILURE")
# how a credential that is missing or refused reads beyond an exception type: the Kubernetes client's
# "ApiException: (403)" (its "Reason: Forbidden" follows on the next line), an HTTP status code 401/403 in a message
# (TensorFlow's GCS filesystem: "HTTP response code 401"), fabric8's "Forbidden!Configured service account doesn't
# have access", database and git logins, AWS keys, google-auth's and azure-identity's credential chains
_REFUSED = (r"ApiException: \((401|403)\)|(?i:\b(status|response|error|http)[ _-]?code:? ?=? ?(401|403)\b)|"
            r"Forbidden!|doesn't have access|(?i:password authentication failed|\bauthentication failed\b)|"
            r"Access Key Id you provided does not exist|Could not automatically determine credentials|"
            r"failed to retrieve a token|api_key not configured|You must be logged in to the server|"
            r"\bcannot (get|list|watch|create|update|patch|delete|deletecollection) resource \"")
# an input whose schema changed, in the words of pyarrow ("AppendRowGroups requires equal schemas.", "Unsupported
# cast from <type> to <type>"), Hugging Face datasets (DatasetGenerationCastError: "All the data files must have the
# same columns, but at some point there are 3 new columns", huggingface/datasets src/datasets/exceptions.py;
# CastError "Couldn't cast"; rename/remove/select_columns: "... not in the dataset. Current columns in the dataset:
# [...]", src/datasets/arrow_dataset.py). Not Spark's [UNRESOLVED_COLUMN.WITH_SUGGESTION]: a column the code names
# that no input has is as often a typo ("Did you mean ...?"), a code bug
# ... also TensorFlow's Example parser for a feature the records do not have ("Feature: <key> (data type: float) is
# required but could not be found.": tensorflow/core/util/example_proto_fast_parsing.cc), pyarrow's checks of a file
# or batch against a dataset's schema ("Schema in <path> was different", "Schema at index <n> was different", "Item
# has schema ... which does not match expected schema") and Arrow's JSON reader when a column's type changes between
# rows ("JSON parse error: Column(/a/b) changed from string to number in row 12": arrow cpp/src/arrow/json)
_SCHEMA_WORDS = (r"requires equal schemas|is required but could not be found|"
                 r"Schema (at index \d+|in .{1,300}?) was different|which does not match expected schema|"
                 r"Column\(\S*\) changed from \w+ to \w+ in row \d+|"
                 r"Unsupported cast from .{1,300}? to \w|must have the same columns|"
                 # datasets' concatenate_datasets ("The features can't be aligned because the key %s of features %s
                 # has unexpected type", src/datasets/features/features.py), pyarrow's unify_schemas ("Unable to
                 # merge: Field %s has incompatible types: %s vs %s")
                 r"features can't be aligned because the key|Field \S+ has incompatible types|"
                 r"(?i:number of features of the model must\s+match the input)|"
                 r"\bDatasetGenerationCastError\b|\bCastError\b|Couldn't cast\b|"
                 r"not in the dataset\. Current columns in the dataset|"
                 r"(?i:\bschemas? (differ|do not match|are (not equal|different|incompatible|inconsistent))\b)")
# an image whose packages do not fit each other, beyond a missing module: protobuf's generated code against a newer
# runtime ("Descriptors cannot be created directly"), pkg_resources' and importlib.metadata's requirement checks,
# torch built without the numpy it needs, a module compiled against NumPy 1.x imported under NumPy 2 (numpy's "A
# module that was compiled using NumPy 1.x cannot be run in NumPy 2.0.0", wrapped over lines in the log), a C++/CUDA
# extension that cannot be built at run time (torch cpp_extension's "Error building extension", DeepSpeed's "CUDA_HOME
# does not exist, unable to compile CUDA op(s)")
_MISMATCH_WORDS = (r"Descriptors cannot be created directly|compiled using NumPy \S+ cannot be run|"
                   r"\b(DistributionNotFound|\w*VersionConflict)\b|"
                   r"No package metadata was found for|Numpy is not available|Error building extension|"
                   r"CUDA_HOME does not exist")
# a tensor shape mismatch printed without its exception line (TensorFlow's graph errors print the op's message on
# a line of its own under "Node: '...'"): the model and its inputs or checkpoint disagree, a code or config bug
_SHAPES = (r"must have the same (first )?(dimension|shape|rank)|Incompatible shapes: \[|shapes cannot be multiplied|"
           r"must match the size of tensor|size mismatch for \S+: copying a param|Matrix size-incompatible|"
           r"Dimensions must be equal, but are \d+ and \d+")
# What is the pipeline code's own programming error, whoever raised it: Python's exception types that only a mistake
# in the calling code raises (a wrong type, attribute, name, index or key, a failed assertion, a division by zero, a
# variable used before it is set, code that does not parse, a method left unimplemented), also as the cause a
# wrapper names (Ray's "RayTaskError(AttributeError)"), and the messages of the generic types (ValueError,
# RuntimeError, TensorFlow's InvalidArgumentError) that say the code's tensors disagree: shapes, dtypes, devices,
# autograd misuse, a checkpoint that does not fit the model. A KeyError is here because a dict lookup is code; one
# that a data library raised for a string key (a column) is `schema-drift`, tried before. Not here: a library's own
# error type, OSError, a bare RuntimeError/ValueError/Exception with another message, a Java or Py4J wrapper.
_PROGRAMMING_TYPES = (r"TypeError|AttributeError|NameError|UnboundLocalError|IndexError|KeyError|AssertionError|"
                      r"ZeroDivisionError|SyntaxError|IndentationError|TabError|NotImplementedError|RecursionError")
_PROGRAMMING_MESSAGES = (_SHAPES + r"|Expected all tensors to be on the same device|"
                         r"Expected input batch_size \(\d+\) to match target batch_size|"
                         r"modified by an inplace operation|does not require grad and does not have a grad_fn|"
                         r"backward through the graph a second time|expected scalar type \w+ but found \w+|"
                         r"Error\(s\) in loading state_dict|invalid literal for int\(\) with base|"
                         r"(not enough|too many) values to unpack|operands could not be broadcast together|"
                         r"could not broadcast input array|The size of tensor a \(\d+\) must match|"
                         r"is incompatible with the layer|index \d+ is out of bounds|mismatch in its core dimension")
_PROGRAMMING_ERROR = (rf"^([\w.]+\.)?(\w+\()?({_PROGRAMMING_TYPES})\)?(:|$)|"
                      rf"^(?![\w.]*({_WRAPPERS})\b)(?!.*{_CAUSE_BELOW})[A-Za-z_][\w.]*(\([\w.]+\))?: "
                      rf".*({_PROGRAMMING_MESSAGES})")
# how a deadline or a batch system's time limit reads, in a status line or a log line: Kubernetes and Argo, Tekton
# ("PipelineRun %q was timed out": tektoncd/pipeline pkg/reconciler/pipelinerun), Slurm, PBS ("=>> PBS: job killed:
# walltime %ld exceeded limit %ld"), Moab ("job exceeded wallclock limit"), LSF (TERM_RUNLIMIT), HTCondor/CRAB ("wall
# clock limit"), Nextflow ("Process exceeded running time limit (4h)": nextflow TaskProcessor), submitit's job that
# timed out without a checkpoint ("Job not requeued because: timed-out and not checkpointable.",
# facebookincubator/submitit core/job_environment.py), SageMaker, Vertex AI, Batch
_TIME_LIMIT = (r"exceeded its deadline|longer than (the )?specified deadline|Max duration limit exceeded|"
               r"(?<!code = )(?<!code=)\bDeadlineExceeded\b|activeDeadlineSeconds|DUE TO TIME LIMIT|"
               r"\b(TaskRun|PipelineRun)Timeout\b|\b(TaskRun|PipelineRun) \"[^\"]+\" was timed out|"
               r"failed to finish within|MaxRuntimeExceeded|Process exceeded running time limit|"
               r"timed-out and not checkpointable|"
               # Modal's function timeout (modal client: "Task's current input %s hit its timeout of %ss",
               # FunctionTimeoutError)
               r"\bFunctionTimeoutError\b|hit its timeout of [\d.]+s\b|"
               r"(?i:(exceeded|longer than) the max(imum)? (execution )?(time|run ?time|duration)|"
               r"job attempt duration exceeded timeout|\btime ?limit (was )?(exceeded|reached)|exceeded timeout of|"
               r"walltime \d+ exceeded limit|walltime exceeded|exceeded (its |the )?wall ?clock (time )?limit|"
               r"exceeded its walltime limit|"
               r"\bdue to wall ?clock limit)|TERM_RUNLIMIT")
# the words of Kubernetes' verdicts that an orchestrator's exception may quote (Airflow's KubernetesPodOperator,
# the Kubernetes client, a pipeline SDK): they decide before the code-bug fallback
_QUOTED_DEADLINE = r"exceeded its deadline|longer than (the )?specified deadline|activeDeadlineSeconds"
_QUOTED_OOM = r"\bOOMKill(ed|ing)\b|(?i:\bOOM[ -]?killed\b)"

RULES: tuple[Rule, ...] = (
    # what Kubernetes and Argo said
    Rule("eviction", "status", _KUBELET_EVICTED, EVICTED),
    Rule("preemption", "status", _PREEMPTED, RECLAIMED),
    Rule("gpu-unschedulable", "status",
         r"^(?s:(?!.*(didn't trigger scale-up|wouldn't fit if a new node)).*(" + _GPU + r"|"
         r"(nvidia\.com|amd\.com)/gpu.*(Unschedulable|didn't match|untolerated)|(?i:taints? \{[\w./-]*gpu)))",
         "no node can offer the requested GPUs"),
    Rule("unschedulable", "status",
         r"^(?s:(?!.*(didn't trigger scale-up|wouldn't fit if a new node)).*(" + _SCHEDULER + "|" + _CAPACITY + "))",
         NO_NODE),
    # runc: "container init was OOM-killed (memory limit too low?)" (a limit too small to start the process)
    Rule("oom", "status",
         _QUOTED_OOM + r"|Memory cgroup out of memory|"
         r"(?i:out of memory: kill(ed)? process|oom[- ]kill event|exceeded (job )?memory limit|"
         r"killed due to memory usage|killed by YARN for exceeding memory|out-of-memory handler|"
         r"ran out of memory and exited)",
         "the kernel killed the container at its memory limit (OOMKilled, an oom-kill event)"),
    Rule("network", "status",
         rf"(?is:(pull|pulling|registry|fetch|put file|get file|upload|download|artifact|bucket).*({_NET}))|"
         rf"(?is:({_NET}).*(pull|registry))",
         "the registry or a network dependency was unreachable (not a bad image reference)"),
    Rule("image-pull", "status", _REGISTRY, BAD_IMAGE),
    Rule("timeout", "status", _TIME_LIMIT, DEADLINE),
    # the kubelet and the runtime failing or timing out to create a sandbox or container ("Failed to create pod
    # sandbox: ... context deadline exceeded", "failed to start sandbox container", dockershim's "Create Container
    # Failed"), a runtime the node is configured for but lacks (containerd's 'no runtime for "nvidia" is
    # configured', docker's "unknown or invalid runtime name", a missing nvidia-container-runtime binary), a node
    # that failed under a Slurm job ("CANCELLED AT ... DUE TO NODE FAILURE", SchedMD/slurm slurmstepd/req.c)
    Rule("infrastructure", "status",
         r"\b(NodeLost|NodeNotReady|NotReady|ContainerCannotRun|CreateContainerError|RunContainerError|"
         r"UnexpectedAdmissionError|ContainerStatusUnknown)\b|node .*not ready|"
         r"^(?!" + _IMAGE_LACKS + r")(.*failed to (create|start) (containerd )?(task|container|shim)|"
         r".*OCI runtime (create|exec|state|start|delete)\b|"
         r".*(?i:failed to (create|start) (the )?(pod )?(sandbox|container)\b|"
         r"create container failed))|FailedCreatePodSandBox|(?i:failed (to )?create pod sandbox)|"
         r"\b(RunPodSandbox|CreatePodSandbox|CreateContainer|StartContainer)\b.*(?i:failed)|"
         r"failed to reserve (container|sandbox) name|PLEG is not healthy|Pod Allocate failed|"
         r"(containerd|dockershim|crio)\.sock|Kubelet stopped posting node status|DUE TO NODE FAILURE|"
         r"no runtime for \"?\S+\"? is configured|unknown or invalid runtime name|" + _GPU_FAULT + "|"
         r"Error response from daemon: No such container|"
         # a container-runtime (CRI) call that ran out of time: the kubelet's Failed event "Error: context deadline
         # exceeded" for a container it could not create, a gRPC "rpc error: code = DeadlineExceeded" from the
         # runtime; a pull that timed out names the pull and is `network`, tried first
         r"\bkubelet\b.*\bError: context deadline exceeded|rpc error: code = DeadlineExceeded",
         NODE_FAILED),
    Rule("permissions", "status",
         r"Error from server \(Forbidden\)|is forbidden: User|AccessDenied|does not have .{0,120}permission|"
         r"(?i:\bforbidden\b|access denied|permission denied|unauthori[sz]ed|not authori[sz]ed)|PERMISSION_DENIED",
         NO_ACCESS),
    Rule("dependency", "status", r"executable file not found in \$PATH|exec format error",
         "the image lacks the command the step runs, or was built for another CPU architecture"),
    # the exception a process died of
    Rule("preemption", "exception", _PREEMPTED, RECLAIMED),
    Rule("eviction", "exception", _KUBELET_EVICTED, EVICTED),
    Rule("gpu-unschedulable", "exception", _GPU, "the cloud or the cluster has no GPUs (or GPU quota) to give"),
    Rule("unschedulable", "exception", _SCHEDULER + "|" + _CAPACITY,
         "the scheduler or the cloud has no room, capacity or quota left for the pod or the instances"),
    Rule("gpu-oom", "exception",
         _EXC + r"OutOfMemoryError: (CUDA|.*\bGPU\b)|CUDA out of memory|CUDA error: out of memory|"
         r"(?i:\bcuda\w*\b.{0,80}\bout of memory)|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|"
         r"^(?!.*(" + _CPU_DEVICE + r")).*(ResourceExhaustedError|OOM when allocating)|"
         r"(HIP|MPS|XPU)( backend)? out of memory|hipErrorOutOfMemory|CUDA_ERROR_OUT_OF_MEMORY|"
         r"cudaErrorMemoryAllocation|RESOURCE_EXHAUSTED: (Out of memory|Failed to allocate)|"
         r"(?i:allocator \(gpu\w*\) ran out of memory|out of memory in memory space hbm)|"
         r"Attempting to reserve \S+ at the bottom of memory|Tried to allocate [\d.]+ [KMGT]iB|"
         r"No available memory for the cache blocks|available KV cache memory",
         GPU_MEMORY),
    Rule("oom", "exception",
         _EXC + r"(MemoryError|_ArrayMemoryError|OutOfMemoryError)(:|$)|killed by signal: Killed|"
         r"^(?!.*</torch_).*Cannot allocate memory|std::bad_alloc|java\.lang\.OutOfMemoryError|"
         r"GC overhead limit exceeded|(OOM when allocating|ResourceExhaustedError|ran out of memory).*(" +
         _CPU_DEVICE + r")|Unable to allocate [\d.]+ [KMGTP]i?B|paging file is too small|" +
         _CPU_ALLOCATOR + "|" + _QUOTED_OOM,
         "the process could not allocate host memory, or was killed for it (the OOM killer, Ray's memory monitor)"),
    Rule("distributed", "exception", _SHM, SHARED_MEMORY, cause="shared-memory"),
    Rule("distributed", "exception",
         _EXC + r"(DistBackendError|DistNetworkError|DistStoreError)(:|$)|NCCL|ProcessGroup|collective operation|"
         r"(?i:\bgloo\b)|unhandled (system|cuda) error|remote process exited or there was a network error|"
         r"Rendezvous\w*Error|store based barrier|mismatch between collectives|Horovod\w*Error|"
         r"Horovod has been shut down|TCPStore|(?i:client socket has timed out)|MPI_ABORT|(?i:barrier timed out)|"
         r"server socket has failed to listen|Collective ops is aborted|coordinator detected missing heartbeats",
         LOST_EACH_OTHER),
    Rule("network", "exception",
         r"^(?!.*\b404\b)(" + _EXC[1:] + r"(ConnectionError|ConnectionResetError|ConnectionRefusedError|"
         r"ConnectionAbortedError|TimeoutError|Timeout|ReadTimeout|ConnectTimeout|ReadTimeoutError|"
         r"ConnectTimeoutError|EndpointConnectionError|ConnectionClosedError|ProxyConnectionError|ProxyError|"
         r"RemoteDisconnected|ProtocolError|ServiceUnavailable|gaierror|timeout|BrokenPipeError|MaxRetryError|"
         r"NewConnectionError|SSLError|ClientConnectorError|ClientOSError|ServerDisconnectedError|ConnectError|"
         r"ChunkedEncodingError|IncompleteRead|UnknownHostException|SocketTimeoutException|ConnectException)"
         r"(:|$)|.*(Max retries exceeded|Failed to establish a new connection|Connection (refused|reset by peer|"
         r"timed out|aborted)|Read timed out|Could not connect to the endpoint URL|"
         r"(?i:temporary failure in name resolution|name or service not known|could not resolve host|"
         r"check your (internet )?connection|network (error|is unreachable)|could not translate host name)|"
         r"LocalEntryNotFoundError|We couldn't connect to|failed to connect to all addresses|Couldn't reach|"
         r"\bE(CONNREFUSED|TIMEDOUT|CONNRESET|AI_AGAIN|NOTFOUND)\b|StatusCode\.UNAVAILABLE|DNS resolution failed|"
         r"(Connect|Read) timeout on endpoint URL|Connection was closed before we received a valid response|"
         r"Remote end closed connection|urlopen error|Can't connect to (local )?MySQL server|"
         r"\b(502|503|504)\b.{0,40}(?i:bad gateway|service unavailable|gateway time-?out)))",
         UNREACHABLE),
    Rule("image-pull", "exception", _EXC + r"ImageNotFound(:|$)|" + _REGISTRY, BAD_IMAGE),
    Rule("timeout", "exception",
         _EXC + r"(AirflowTaskTimeout|AirflowSensorTimeout|SoftTimeLimitExceeded|TimeLimitExceeded|"
         r"CellTimeoutError)(:|$)|" + _QUOTED_DEADLINE,
         "a task ran past the timeout or deadline its orchestrator set (Airflow, Celery, a notebook cell, Kubernetes)"),
    Rule("infrastructure", "exception", _GPU_FAULT + "|" + _NODE_DIED,
         "the GPU or the node under the process failed (ECC or Xid error, lost GPU, dead node)"),
    Rule("permissions", "exception",
         _EXC + r"(PermissionError|\w*(AccessDenied|Forbidden|Unauthorized|PermissionDenied|Unauthenticated|"
         r"AccessControl)\w*|GatedRepoError|NoCredentialsError|ClientAuthenticationError|RefreshError)(:|$)|"
         r"AccessDenied|\b(401|403)\b.*(?i:forbidden|unauthori[sz]ed|denied|access)|\b(401|403) Client Error|"
         r"(?i:access denied|permission denied|does not have [\w.]+ access|gated repo|not authori[sz]ed to)|"
         r"\b(DefaultCredentialsError|AuthorizationPermissionMismatch|AuthorizationFailure|InvalidAccessKeyId|"
         r"SignatureDoesNotMatch|ExpiredToken|InvalidClientTokenId|UnrecognizedClientException|"
         r"AuthenticationFailed|InvalidAuthenticationInfo)\b|PERMISSION_DENIED|UNAUTHENTICATED|"
         r"Unable to locate credentials|Read-only file system|requested access to the resource is denied|"
         r"(?i:permission .{0,80} denied|insufficient authentication scopes|invalid (user )?token|"
         r"does not have authorization|invalid credentials)|" + _REFUSED,
         NO_ACCESS),
    Rule("dependency", "exception",
         _EXC + r"(ModuleNotFoundError|ImportError)(:|$)|No module named|undefined symbol|"
         r"cannot open shared object file|no kernel image is available|CUDA driver version is insufficient|"
         r"(?i:version mismatch)|compiled (against|with) .* but|"
         r"requires [\w.\[\]-]+ ?(==|>=|<=|~=|!=|<|>) ?[\d.]+.{0,80}but (found|you have|got)|"
         r"GLIBC\w*_[\d.]+' not found|driver on your system is too old|(?i:found no NVIDIA driver)|"
         r"unsupported toolchain|(?i:not compiled with (CUDA|cuDNN|NCCL))|"
         r"is not compatible with the current PyTorch installation|compiled with different CUDA|"
         r"mismatches the version that was used to compile|compiled using NumPy \S+ cannot be run|"
         r"binary incompatibility|Could not load dynamic library|DLL load failed|CUDA_HOME environment variable|"
         r"^([\w.]+\.)?AttributeError: module '[\w.]+' has no attribute|" + _MISMATCH_WORDS,
         NOT_IN_IMAGE),
    Rule("data-missing", "exception",
         _EXC + r"(FileNotFoundError|NoSuchKey|NoSuchBucket|EmptyDataError|PathNotFoundError|NotFound|"
         r"NotFoundError|EntryNotFoundError|DatasetNotFoundError|RepositoryNotFoundError|RevisionNotFoundError|"
         r"NoSuchTableException|TableNotFound\w*|NoSuchFileException|BucketNotFoundException)(:|$)|" +
         _EXC + r"AnalysisException: \[(PATH|TABLE_OR_VIEW)_NOT_FOUND\]|The specified key does not exist|"
         r"(?i:path does not exist)|Table or view not found|\b404 Client Error|HTTP response code 404|"
         r"\b404\b.{0,80}(?i:not found|does not exist)|FileNotFoundException|\[Errno 2\] No such file or directory|"
         r"\b(ResourceNotFoundError|BlobNotFound|ContainerNotFound)\b|"
         r"The specified (blob|container|bucket) does not exist|No such object: |bucket does not exist|"
         r"No URLs matched|does not appear to have a file named|"
         r"Unsuccessful TensorSliceReader constructor|Failed to find any matching files|"
         r"relation \"[^\"]+\" does not exist|no such table|"
         # numpy's DataSource ("raise IOError('%s not found.' % path)", numpy/lib/_datasource.py)
         r"^(OSError|IOError): \S+ not found\.$|" + _MISSING,
         MISSING_INPUT),
    Rule("schema-drift", "exception",
         r"(?i:schema mismatch)|No match for FieldRef|None of \[.*\] are in the \[columns\]|not in index|"
         r"(?i:columns? .*(not found|does not exist|missing))|(?i:missing columns?)|features? .* (don't|do not) match|"
         r"(?i:schema .* (does not|doesn't) match)|(?i:\bcolumns?\b[^.]{0,100}\bnot (found|present|in)\b)|"
         r"Couldn't cast\b|column names don't match|(?i:feature names (should|must) match)|"
         r"Feature names (unseen|seen) at fit time|X has \d+ features, but \w+ is expecting \d+ features|"
         r"feature_names mismatch|"
         r"did not have the following fields|is not the same as it was in training data|"
         r"Schema at index \d+ was different|Field \S+ has incompatible types|column cannot be converted|"
         r"cannot resolve .{0,200} given input columns|Field \S+ does not exist in schema|"
         r"missing (inputs?|columns?|features?):? \[|Failed to enforce schema|Incompatible input types for column|"
         r"Missing data for input|is not in features dictionary|not found in axis|Usecols do not match columns|"
         r"Failed to merge (fields|incompatible data types)|CANNOT_MERGE_INCOMPATIBLE|"
         r"^KeyError: ['\"].*['\"] \(raised by (pandas|datasets|pyarrow|polars)\)$|" +
         _EXC + r"(SchemaErrors?|CastError|ColumnNotFoundError|SchemaFieldNotFoundError)(:|$)|" + _SCHEMA_WORDS,
         SCHEMA_CHANGED),
    # the fallback is not "any other exception": a library's own error type, a Java/Py4J wrapper or a vague
    # RuntimeError says a library or service failed, not why; guessing "fix the code" for it sends the wrong fix,
    # so it stays `unknown` with its evidence (for the owner, or the coding agent)
    Rule("code-bug", "exception", _PROGRAMMING_ERROR,
         "the pipeline's code raised a programming error (a type, attribute, name, index or key error, an "
         "assertion, a shape, dtype or device mismatch)"),
    # any log line
    Rule("eviction", "log", r"was low on resource|which exceeds its request of|"
         r"ephemeral local storage usage exceeds|(?i:reason:? Evicted\b|\bpod (was|has been) evicted\b)",
         EVICTED),
    Rule("preemption", "log",
         r"(?i:\b(job|pod|node|instance|vm|task|tpu|worker|replica|host|slice|cluster)s? (is|was|were|has been|got) "
         r"pre-?empted\b|due to pre-?emption|termination is imminent|spot[ _-]?(instance[ _-]?)?interrupt|"
         r"received a shutdown signal|system is (going down|shutting down)|"
         r"spot (instance|capacity|vm)\b.{0,40}(reclaimed|terminated|evicted)|delete from interruption message)|"
         r"Spot ITN\b|DUE TO (PREEMPTION|JOB REQUEUE)|"
         # TensorFlow's TPU ShutdownHook: a worker restarted under the job, the sign of a preempted (or maintained)
         # TPU (tensorflow/python/tpu/session_support.py: "ShutdownHook: lame workers found: %s")
         r"ShutdownHook: lame workers found|" + _CLOUD_PREEMPTED,
         "the node was reclaimed or the job preempted (spot, a scheduler preemption, a host shutdown)"),
    Rule("gpu-unschedulable", "log",
         _GPU + r"|(No available node types can fulfill resource request|cannot be scheduled right now|"
         r"could not find a node type to satisfy the request|"
         r"pending placement group|defaultdict\(<class 'float'>, \{).*'GPU'|"
         # Ray's pending-task warning lists the demand on a line of its own (python/ray/_private/worker.py)
         r"Required resources for this actor or task: \{[^}]*\bGPU\b|"
         # Ray: a task no node can ever run ("The task with ID %s is infeasible and cannot currently be executed.
         # It requires {CPU,1.000000},{GPU,6.000000} ..."), the autoscaler's "... {'GPU': 1.0}. Add suitable node
         # types to this cluster to resolve this issue.", a placement group demand ("{'GPU': 1.0} * 1
         # (STRICT_SPREAD): 1+ pending placement groups")
         r"is infeasible and cannot currently be executed\. It requires .{0,200}?\{GPU,|"
         r"'GPU': [\d.]+[^{}]*\}\.? (Add suitable node types|\* \d+ \(\w+\): \d+\+? pending placement group)",
         "no node of the cluster (Kubernetes or Ray) can offer the requested GPUs"),
    Rule("unschedulable", "log",
         # Ray's autoscaler (python/ray/autoscaler/_private/resource_demand_scheduler.py): "The autoscaler could
         # not find a node type to satisfy the request: [{'CPU': 1.0}]"
         r"No available node types can fulfill resource request|cannot be scheduled right now|"
         r"could not find a node type to satisfy the request|" + _SCHEDULER +
         "|" + _CAPACITY,
         "no node of the cluster (Kubernetes or Ray) can take the requested resources (CPU, memory, custom)"),
    Rule("gpu-oom", "log",
         r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError: CUDA|CUBLAS_STATUS_ALLOC_FAILED|"
         r"CUDNN_STATUS_ALLOC_FAILED|^(?!.*(" + _CPU_DEVICE + r")).*OOM when allocating|(?i:gpu.*out of memory)|"
         r"(HIP|MPS|XPU)( backend)? out of memory|hipErrorOutOfMemory|CUDA_ERROR_OUT_OF_MEMORY|"
         r"cudaErrorMemoryAllocation|RESOURCE_EXHAUSTED: (Out of memory|Failed to allocate)|"
         r"(?i:\bcuda\w*\b.{0,80}\bout of memory)|Tried to allocate [\d.]+ [KMGT]iB|"
         r"No available memory for the cache blocks|available KV cache memory|"
         # XLA's device allocator ("Resource exhausted: Out of memory while trying to allocate %d bytes.")
         r"^(?!.*(" + _CPU_DEVICE + r")).*Out of memory while trying to allocate \d+ bytes|"
         r"Attempting to reserve \S+ at the bottom of memory",
         GPU_MEMORY),
    Rule("oom", "log",
         r"^\W*Killed\W*$|: line \d+: +\d+ Killed\b|^\[\d+\] +\d+ killed +\S|"
         r"\bOOMKill(ed|ing)\b|oom-kill|running low on memory|"
         r"(?i:\bexit(ed)?\b\D{0,25}\b137\b|\b(exit|return) ?(code|status)\b[^\d\n-]{0,10}-9\b|"
         r"task \d+: (out of memory|killed)\b|with signal SIGKILL)|exitcode\s*:\s*-9\b|died with <Signals\.SIGKILL: 9>|"
         r"killed by signal: Killed|(?i:killed by the oom|signal 9 \(SIGKILL\)|out of memory: kill(ed)? process|"
         r"invoked oom-killer|out-of-memory handler)|Memory cgroup out of memory|MemoryError\b|"
         r"^(?!.*</torch_).*Cannot allocate memory|std::bad_alloc|java\.lang\.OutOfMemoryError|"
         r"GC overhead limit exceeded|killed by YARN for exceeding memory limits|Memory on the node \(IP: |"
         r"exceeds the memory usage threshold|Ray killed this worker|exceeded \d+% memory budget|"
         # Ray's memory monitor's summary: "N Workers (tasks / actors) killed due to memory pressure (OOM)"
         # (ray-project/ray src/ray/raylet/node_manager.cc)
         r"killed due to memory pressure|how to address the out of memory issue|"
         # MPICH's Hydra reports a rank SIGKILLed as "=   EXIT CODE: 9" under "BAD TERMINATION OF ONE OF YOUR
         # APPLICATION PROCESSES"
         r"^=\s+EXIT CODE: 9\s*$|"
         r"OOM when allocating.*(" + _CPU_DEVICE + r")|" + _CPU_ALLOCATOR,
         HOST_MEMORY),
    Rule("distributed", "log", _SHM, SHARED_MEMORY, cause="shared-memory"),
    Rule("distributed", "log",
         r"(?i:NCCL (error|failure|WARN))|NCCL INFO.*timeout|ncclInternalError|ncclSystemError|"
         r"ncclUnhandledCudaError|ncclRemoteError|Watchdog caught collective operation timeout|ProcessGroupNCCL|"
         r"collective operation timeout|(?i:rank \d+ .*(desync|timed out))|"
         r"(?i:\bgloo\b.*(connection (closed|reset)|timed out))|Gloo connectFullMesh failed|"
         r"Rendezvous\w*Error|store based barrier|"
         r"mismatch between collectives|Horovod has been shut down|(?i:client socket has timed out)|MPI_ABORT|"
         r"lost communication with (a )?remote daemon|server socket has failed to listen",
         LOST_EACH_OTHER),
    Rule("network", "log",
         rf"(?i:{_NET})|Could not connect to the endpoint URL|Max retries exceeded with url|Connection (reset|refused)|"
         r"\b(Read|Connect)Timeout(Error)?\b|LocalEntryNotFoundError|We couldn't connect to|"
         r"failed to connect to all addresses|\bE(CONNREFUSED|TIMEDOUT|CONNRESET|AI_AGAIN|NOTFOUND)\b|"
         r"(?i:network (error|is unreachable))|(Connect|Read) timeout on endpoint URL|"
         r"Connection was closed before we received a valid response|UnknownHostException|SocketTimeoutException|"
         r"curl: \((6|7|28|35|52|56)\)|Failed to connect to \S+ port \d+|(?i:could not translate host name)|"
         r"(?i:couldn't resolve host)|DNS resolution failed",
         UNREACHABLE),
    Rule("image-pull", "log", _REGISTRY, BAD_IMAGE),
    Rule("timeout", "log",
         _TIME_LIMIT + r"|AirflowTaskTimeout|"
         r"Process timed out, PID: \d+|Timeout, PID: \d+|"
         # a launcher's own timeout waiting for the job it submitted (Kubeflow's launch_crd.py: "Timeout waiting
         # for {group}/{plural} {name} in namespace {ns} to enter one of the conditions {conditions}."), GitLab
         # Runner's job timeout ("execution took longer than %v seconds"), Ray Tune's time budget
         # (python/ray/tune/stopper/timeout.py: "Reached timeout of %s seconds. Stopping all trials.")
         r"(?i:time(d)? ?out waiting for .{1,300} to (enter|reach|complete|finish|succeed|become)\b)|"
         r"execution took longer than \S+ seconds|because the timeout was exceeded|"
         r"Reached timeout of [\d.]+ seconds",
         DEADLINE),
    Rule("infrastructure", "log",
         r"^(?!" + _IMAGE_LACKS + r").*(OCI runtime (create|exec|state|start|delete) failed|failed to create shim task|"
         r"error running hook)|PLEG is not healthy|" + _NODE_DIED + "|" + _GPU_FAULT,
         "the container runtime, the GPU or the node failed (runtime or GPU hook error, GPU fault, dead node)"),
    Rule("permissions", "log",
         r"AccessDenied|(?i:access denied|permission denied|\bforbidden\b|gated repo|not authori[sz]ed to)|"
         r"\b401 Unauthorized\b|does not have [\w.]+ access|is forbidden: User|Required '[\w.]+' permission|"
         r"does not have .{0,120}permission|Unable to locate credentials|Read-only file system|"
         r"requested access to the resource is denied|PERMISSION_DENIED|"
         r"\b(InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|AuthorizationPermissionMismatch)\b|" + _REFUSED,
         NO_ACCESS),
    Rule("dependency", "log",
         r"ModuleNotFoundError|No module named|undefined symbol|cannot open shared object file|"
         r"no kernel image is available|CUDA driver version is insufficient|GLIBC\w*_[\d.]+' not found|"
         r"driver on your system is too old|(?i:found no NVIDIA driver)|"
         r"is not compatible with the current PyTorch installation|Could not load dynamic library|"
         r"executable file not found in \$PATH|exec format error|"
         # CPython's own message for a script it cannot open (Modules/main.c: "%ls: can't open file %R: [Errno
         # %d] %s"): the step's entry script is not in the image, not a missing input
         r"^\S*python[\d.]*: can't open file .{1,300}\[Errno 2\]|"
         r"No matching distribution found for|Could not find a version that satisfies the requirement|"
         r"cannot import name '\w+' from '[\w.]+'|" + _MISMATCH_WORDS,
         NOT_IN_IMAGE),
    Rule("data-missing", "log",
         r"(?i:No such file or directory)|\b(NoSuchKey|NoSuchBucket|BlobNotFound|ContainerNotFound)\b|"
         r"The specified (key|bucket|blob|container) does not exist|\bPATH_NOT_FOUND\b|"
         r"(?i:path does not exist)|(?i:file not found)|response code 404|\b404 Client Error\b|FileNotFoundException|"
         r"An error occurred \(404\)|"
         r"No URLs matched|does not appear to have a file named|No such object: |Table or view not found|"
         r"relation \"[^\"]+\" does not exist|" + _MISSING,
         MISSING_INPUT),
    Rule("schema-drift", "log",
         r"None of \[.*\] are in the \[columns\]|column names don't match|(?i:schema mismatch)|"
         r"(?i:feature names (should|must) match)|No match for FieldRef|\bnot in index\b|"
         r"Schema at index \d+ was different|cannot resolve .{0,200} given input columns|" + _SCHEMA_WORDS,
         SCHEMA_CHANGED),
    Rule("code-bug", "log", _SHAPES,
         "a tensor shape mismatch: the model, its inputs or its checkpoint disagree (a code or config bug)"),
    # argparse's exit on a command line the script does not accept (Lib/argparse.py: "%(prog)s: error: %(message)s"
    # with "unrecognized arguments: %s", "the following arguments are required: %s", "argument %s: invalid ...")
    Rule("code-bug", "log",
         r"^\S+: error: (unrecognized arguments: |the following arguments are required: |argument \S+: invalid )",
         "the step's command line and its script's arguments disagree (a code or configuration bug)"),
    # a status line that says little by itself
    Rule("gpu-unschedulable", "hint", _GPU,
         "the cluster autoscaler found no node it could add with the requested GPUs"),
    Rule("unschedulable", "hint",
         r"didn't trigger scale-up|^\S+\s+\d+/\d+\s+Pending\s|^\s*Status:\s+Pending\s*$|"
         r"timeout expired waiting for volumes to attach|(?i:unable to (attach or )?mount volumes)",
         "the pod stayed Pending (no node could take it, or its volumes never came) and nothing else was said"),
    # Slurm's "*** STEP 12.0 ON node CANCELLED AT <time> ***" without "DUE TO ...": scancel or a requeue
    # Kubernetes' DisruptionTarget reasons for a pod taken away by a drain through the Eviction API (a scale-down, a
    # spot interruption handler) or deleted by the pod GC once its node object was gone ("PodGC: node no longer
    # exists", pkg/controller/podgc); the scheduler's PreemptionByScheduler is a status rule
    Rule("preemption", "hint", r"replica\(s\) failed|\bpod (was )?deleted\b|\bpod \"[^\"]+\" not found\b|"
         r"\*\*\* (JOB|STEP) \S+ (ON \S+ )?CANCELLED AT \S+ \*\*\*|\b(EvictionByEvictionAPI|DeletionByPodGC)\b",
         "a pod, replica or batch job vanished or was cancelled with no reason given: its node was reclaimed (spot, "
         "preemptible) or drained, or the job requeued; a rerun is the fix either way"),
    # GNU timeout's exit status when the command timed out (coreutils timeout(1): "If the command times out, and
    # --preserve-status is not set, then exit with status 124")
    Rule("timeout", "hint", r"(?i:\bexit (status|code)\W{0,3}124\b)",
         "the step exited with status 124, what `timeout` returns when the command it ran timed out"),
    Rule("oom", "hint", r"(?i:\bexit(ed)?\b\D{0,25}\b137\b|\bexit_?code\W{0,3}137\b|status of (137|9\(SIGKILL\))|"
         r"signal: killed)",
         "the container was SIGKILLed (exit code 137) with no other reason given: usually the kernel's OOM killer"),
)

# What each class is, as a root cause, and where it ends: the coding agent's prompt lists these
# (${class_definitions} in hera_flows/steps/triage/prompt.md) and the docs print them, so an agent that decides a
# class uses the same taxonomy as the rule table.
DEFINITIONS: dict[str, str] = {
    "oom": "the container or process ran out of host (CPU) memory: OOMKilled, exit code 137 from the OOM killer, "
           "MemoryError, a memory monitor killing workers",
    "gpu-oom": "a GPU ran out of memory (CUDA, ROCm, XLA or TensorFlow allocators): not the container's memory",
    "eviction": "the kubelet evicted the pod because its node ran short of memory, disk (ephemeral storage) or PIDs",
    "image-pull": "the image cannot be pulled because its reference or the pull credentials are wrong (not found, "
                  "denied, unauthorized)",
    "network": "a registry, object store, API, model hub or peer could not be reached (timeouts, refused or reset "
               "connections, DNS, TLS, a transfer cancelled midway): reachability, also for an image pull",
    "gpu-unschedulable": "the GPUs or accelerators the job asks for cannot be had: no node offers them (count, type, "
                         "GPU slice), a GPU taint, an exhausted GPU quota or no cloud capacity for them",
    "unschedulable": "no node can take the pod for another reason: CPU, memory, pods, affinity or node selector, "
                     "taints, volumes, or a resource quota that is not about GPUs",
    "preemption": "the job's node or pod was taken away from it: a spot or preemptible instance reclaimed, a "
                  "higher-priority job preempting it, a node shut down or drained, a batch system requeueing it",
    "distributed": "the processes of a distributed job failed to reach or agree with each other (NCCL, Gloo or MPI "
                   "errors, collective or rendezvous timeouts, rank desync), or shared memory (/dev/shm) was too "
                   "small",
    "timeout": "the job or step ran past a time limit it was given: activeDeadlineSeconds, a pipeline or task "
               "timeout, a batch system's walltime or time limit (not a network timeout)",
    "infrastructure": "the node, its hardware or its container runtime failed the pod: node lost or not ready, "
                      "runtime or sandbox errors, GPU hardware or driver faults, the node's disk or file system",
    "data-missing": "an input the job reads (file, object, table, dataset, checkpoint) does not exist where it was "
                    "told to look",
    "schema-drift": "an input exists but its shape is not what the code or model expects: a missing, renamed or "
                    "retyped column or field, a changed feature count, files whose schemas differ",
    "permissions": "a credential is missing or lacks a permission: AccessDenied, 401 or 403, PermissionError on a "
                   "path, a gated model",
    "dependency": "the image or environment lacks or mismatches what the code needs: a missing module, library or "
                  "executable, a version or ABI mismatch, a CUDA driver or toolkit mismatch",
    "code-bug": "the job's own code or configuration is wrong (a programming error, a shape mismatch, bad "
                "arguments) and none of the causes above explains the failure",
    "unknown": "the evidence does not show the cause",
}


def definitions_text() -> str:
    """The classes as the agent's prompt lists them, one bullet per class."""
    return "\n".join(f"- `{name}`: {text}" for name, text in DEFINITIONS.items())


# What the issue suggests when no clear-cut fix applies.
REMEDIATIONS: dict[str, str] = {
    "oom": "Raise the step's memory limit, or reduce what it holds in memory (batch size, chunked reading, "
           "dtype downcasting). A MemoryError inside Python can also mean the node itself is too small.",
    "image-pull": "Check the image reference (tag or digest typo, image not pushed, retention policy) and the "
                  "registry credentials (imagePullSecrets). Pin a known-good digest.",
    "data-missing": "An input the pipeline reads does not exist. Check the upstream job that produces it, the "
                    "partition or date the run asked for, and the path in the pipeline parameters.",
    "code-bug": "The pipeline code raised a programming error (a wrong type, attribute, name, index or key, a failed "
                "assertion, a shape, dtype or device mismatch). Reproduce it with the run's parameters and fix the "
                "code; the traceback is below.",
    "gpu-unschedulable": "No node offered the GPUs the step requests. Check the GPU node pool (autoscaler limits, "
                         "quota), the requested count and the nodeSelector/tolerations.",
    "timeout": "The step ran past its deadline. Check for a hang (stuck download, deadlock) before raising "
               "activeDeadlineSeconds.",
    "infrastructure": "The failure came from the cluster or a network dependency, not the pipeline. A retry usually "
                      "succeeds; add a retryStrategy with backoff so flakes do not fail the run.",
    "gpu-oom": "The GPU ran out of memory: reduce the batch size (or use gradient accumulation), enable gradient "
               "checkpointing or mixed precision, or request a GPU with more memory. Raising the container's "
               "memory limit does not help.",
    "eviction": "The kubelet evicted the pod because the node ran short of memory (or disk) while the pod used more "
                "than it requested: set the memory request to what the step uses (equal to its limit makes the pod "
                "Guaranteed), or give it an ephemeral-storage request.",
    "network": "A registry, object store or API could not be reached: a network or DNS problem, not the pipeline. "
               "Check egress (NetworkPolicy, proxy, NAT) to the host named below; a retry with backoff rides out "
               "a flake.",
    "unschedulable": "No node could take the pod: check the CPU and memory requests against the node pool, the "
                     "nodeSelector and affinity, unbound volumes and the namespace quota.",
    "preemption": "The node was reclaimed (spot or preemptible capacity, node shutdown) or the pod preempted: add "
                  "a retryStrategy so the step reruns, and checkpoint long training so a rerun resumes.",
    "distributed": "The processes of the distributed job lost each other. If /dev/shm is the cause, mount a memory "
                   "emptyDir at /dev/shm; for NCCL timeouts check the network between nodes (NCCL_DEBUG=INFO), a "
                   "rank that crashed or stalled first, and NCCL_TIMEOUT.",
    "permissions": "A credential is missing or lacks a permission. Grant the permission named below to the "
                   "workload's identity (IRSA / Workload Identity / the Secret's key), or fix the path's owner.",
    "dependency": "The image does not match the code: a module is missing, or a library or CUDA version does not "
                  "fit. Pin the dependency in the image and rebuild; check the driver/CUDA compatibility matrix.",
    "schema-drift": "The input exists but its schema changed (a column disappeared or changed type). Check the "
                    "upstream producer's recent changes; pin or validate the schema at the pipeline's input.",
    "unknown": "No rule recognised this failure. Read the evidence and the log tails below.",
}



_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# What launchers, log readers and collectors put before each line of a process: timestamps (`kubectl logs
# --timestamps`, Python logging) and the CRI log format's stream and tag ("2024-05-01T10:00:00Z stderr F"),
# `kubectl logs --prefix`, torchrun's "[rank0]:" / "[default0]:", Lightning's
# "[rank: 0]", mpirun's "[1,0]<stderr>:", Ray's "(RayTrainWorker pid=123, ip=10.0.0.1)", Metaflow's
# "[1631/end/5 (pid 71519)]", docker compose's "vllm-1  | ", vLLM's "ERROR 11-18 18:07:28 [engine.py:366]" and a
# quoted paste's "> "; one space after each.
_RANK = re.compile(r"^\s*(?:(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|\[pod/[^\]\s]+\]|"
                   r"(?:stdout|stderr) [FP](?= )|"
                   r"\[(?:rank|default|worker|local_rank)(?:: ?)?\d+\]:?|\[\d+,\d+\]<std(?:out|err)>:|"
                   r"\([^()]*\bpid=\d+[^()]*\)|\[[^\[\]\s]+ \(pid \d+\)\]|[\w.-]+ +\|(?= )|>(?= )|"
                   r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[?[\w./-]+:\d+\]) ?)+")
# A tqdm progress bar ("Epoch 0:  6%|██   | 32040/500150 [6:28:43<94:39:17, 1.37it/s, loss=2.6]", or with no total
# "Generating train split: 173687 examples [00:04, 39483.40 examples/s]") that the next output was written onto
# without a newline.
_PROGRESS = re.compile(r"^[^|]*\d+%\|[^|]*\|[^\[|]*\[[^\]]*\]|"
                       r"^(?:[^|\[\]]*: )?\d+(?:\.\d+)?[kMGT]?(?:it| ?[A-Za-z]+) \[\d+:\d\d(?::\d\d)?, [^\]]*\]|"
                       # a bar drawn without bar characters (a notebook's plain-text tqdm)
                       r"^(?:[^|\[\]]*: +)?\d+%\s+\d+/\d+ \[\d+:\d\d(?::\d\d)?<[^\]]*\]")
_TRACEBACK = "Traceback (most recent call last):"
_INLINE_CODE = re.compile(r"^`([^`]+)`$")  # a line pasted as `inline code`
# "Type: message" or a bare "Type": a class name (CapWords, "_ArrayMemoryError") or a module's lower-case one
# ("socket.gaierror"); a source line that lost its indentation ("x_flow: numpy.ndarray = ...") is not one.
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*(?:_*[A-Z]\w*|(?<=\.)(?:gaierror|herror|timeout|error))"
                             r"(?:\([\w.]+\))?)(:|$)")
_BARE_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?_?[A-Z]\w*(?:\([\w.]+\))?$")  # "GatedRepoError", not "raise"
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+')
# the frame an exception was raised in: Python's 'File "path", line N, in f', IPython's "path in f(...)" and
# "File path:N, in f(...)", Colab's "[path](link) in f(...)"
_ANY_FRAME = re.compile(r'^\s*(?:File "(?P<py>[^"]+)", line \d+|File (?P<ipy>\S+):\d+, in |'
                        r"\[?(?P<old>\S+\.(?:py|pyx|pxi))\]?(?:\(\S*\))? in \S)")
_MARKERS = re.compile(r"^[\s^~]+$")  # the ^^^^ under a frame's source line (Python 3.11+)
# An error on a line by itself (no traceback): "SomethingError: message", "torch.OutOfMemoryError: ...".
_SINGLE_ERROR = re.compile(r"^(?:(?:[\w.]+\.)?_?[A-Z]\w*(?:Error|Exception|Exit|Denied|NotFound)\b(?:\([\w.]+\))?|"
                           r"[\w.]*\b(?:errors?|exceptions?|errors_impl)\.[_A-Z]\w*)(?::|$)")
# A line of a container runtime's JSON log file (docker's json-file driver): {"log":"...\n","stream":"stderr",...}
_JSON_LOG = re.compile(r'^\{"log":"')
# IPython / Jupyter print the type first: "KeyError                 Traceback (most recent call last)".
_IPYTHON_HEADER = re.compile(r"^([A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)$")
# A C++ exception that ended the process (NCCL watchdog, c10::Error): the type, then its what() a line or two later.
_CPP_THROW = re.compile(r"terminate called after throwing an instance of '([\w:]+)'")
_CPP_WHAT = re.compile(r"^\s*what\(\):\s*(.*\S)")
# pandas raises a KeyError for a column a DataFrame does not have: the key is a column name (a string)
# pandas, Hugging Face datasets (a row or batch of a Dataset: datasets/formatting/formatting.py), pyarrow, polars
_DATA_LIBRARY = re.compile(r"(?:^|[/\\])(pandas|datasets|pyarrow|polars)[/\\]")
_LOOKBACK = 16  # lines above an exception line searched for the frame that raised it
_CONTINUED = 4  # lines below a traceback's exception line read as the rest of its message (NCCL's "Last error:")
_CHAINED = re.compile(r"^(During handling of the above exception|The above exception was the direct cause)")


def clean_lines(text: str) -> list[str]:
    """A log tail's lines as a reader sees them: ANSI colours, per-line prefixes, the redrawn part of a ``\r``
    progress bar and a progress bar glued onto the next output taken off; text glued before a ``Traceback``
    becomes a line of its own, and a traceback indented as a whole (logged inside another message) is dedented."""
    lines = []
    indent = ""
    for raw in text.splitlines():
        if _JSON_LOG.match(raw):
            try:
                raw = str(json.loads(raw).get("log", raw)).rstrip("\n")
            except ValueError:
                pass
        line = _ANSI.sub("", raw).rsplit("\r", 1)[-1]
        bar = _PROGRESS.match(line)
        if bar and line[bar.end():].strip():
            line = line[bar.end():]
        line = _RANK.sub("", line)
        line = _INLINE_CODE.sub(r"\1", line.strip()) if _INLINE_CODE.match(line.strip()) else line
        if indent and line.startswith(indent):
            line = line[len(indent):]
        elif line.strip():
            indent = ""
        if _TRACEBACK in line:
            before = line[:line.index(_TRACEBACK)]
            indent = before if before and not before.strip() else ""
            if before.strip():
                lines.append(before.rstrip())
            line = line[len(before):]
        lines.append(line.rstrip())
    return lines


def _exception_line(line: str) -> tuple[str, str] | None:
    match = _EXCEPTION_LINE.match(line)
    if match and (match.group(2) == ":" or _BARE_EXCEPTION.match(line.strip())):
        return match.group(1), line.strip()
    return None


def _final_lines(block: list[str]) -> list[tuple[int, tuple[str, str]]]:
    """The exception line that ends a traceback's frames (frames whose indentation a rank prefix or a paste lost
    are still frames, and the line after a frame is its source line); after a wrapper that names its cause
    (``RayTaskError(OutOfMemoryError): ...``), also the final line of the cause's traceback printed under it."""
    found: list[tuple[int, tuple[str, str]]] = []
    after_frame = False
    for i, line in enumerate(block):
        if not line.strip() or line[:1] in (" ", "\t") or _MARKERS.match(line):
            continue
        if _FRAME.match(line):
            after_frame = True
            continue
        exception = _exception_line(line)
        if exception:
            found.append((i, exception))
            if "(" not in exception[0]:
                return found
            after_frame = False
            continue
        if not after_frame:
            return found
        after_frame = False  # the frame's source line
    return found


def _raised_by_data_library(lines: list[str], at: int) -> str:
    """The tabular data library (pandas, datasets, pyarrow, polars) whose own code raised the exception on line
    ``at`` (the nearest frame above it is the library's), or ""."""
    for line in reversed(lines[max(0, at - _LOOKBACK):at]):
        frame = _ANY_FRAME.match(line)
        if frame:
            library = _DATA_LIBRARY.search(frame.group("py") or frame.group("ipy") or frame.group("old"))
            return library.group(1) if library else ""
    return ""


def _exceptions(text: str) -> list[tuple[str, str, list[str]]]:
    """(type, final line, the lines its message continues on) of every exception in ``text``, in order."""
    lines = clean_lines(text)
    starts = [i + 1 for i, line in enumerate(lines) if line.startswith(_TRACEBACK)]
    frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
    if frames and (not starts or frames[0] < starts[0] - 1):
        starts.insert(0, frames[0])
    found: list[tuple[int, tuple[str, str]]] = []
    for number, start in enumerate(starts):
        stop = starts[number + 1] if number + 1 < len(starts) else len(lines)
        found += [(start + offset, final) for offset, final in _final_lines(lines[start:stop])]
    tracebacks = {at for at, _ in found}
    for i, line in enumerate(lines):
        thrown = _CPP_THROW.search(line)
        what = next((m for m in map(_CPP_WHAT.match, lines[i + 1:i + 4]) if m), None) if thrown else None
        if thrown and what:
            found.append((i, (thrown.group(1), f"{thrown.group(1)}: {what.group(1)}")))
    if not found:
        for i, line in enumerate(lines):
            header = _IPYTHON_HEADER.match(line.strip())
            if header and not any(later.startswith(header.group(1) + ":") for later in lines[i + 1:]):
                found.append((i, (header.group(1), header.group(1))))
            elif _SINGLE_ERROR.match(line.strip()):
                found.append((i, (line.strip().split(":", 1)[0], line.strip())))
    result = []
    for at, (kind, final) in sorted(found, key=lambda item: item[0]):
        library = _raised_by_data_library(lines, at) if re.match(r"KeyError: (['\"]).*\1$", final) else ""
        if library:
            final += f" (raised by {library})"
        more: list[str] = []
        # a traceback's exception, or an error line by itself (NCCL's "Last error:" follows both), continues on
        # the lines below it until a blank line, a frame or another error
        for line in lines[at + 1:at + 1 + _CONTINUED] if at in tracebacks or _SINGLE_ERROR.match(final) else []:
            if not line.strip() or _FRAME.match(line) or _CHAINED.match(line) or line.startswith(_TRACEBACK) or \
                    (at not in tracebacks and _SINGLE_ERROR.match(line.strip())):
                break
            more.append(line.strip())
        result.append((kind, final, more))
    return result


def final_exceptions(text: str) -> list[tuple[str, str]]:
    """(exception type, final line) of every Python traceback in ``text`` (a tail cut inside a traceback counts
    from its first frame) and of every C++ exception that terminated the process, in order; when no traceback
    ends in an exception, the lines that are errors by themselves (and the types IPython names in its headers).
    A ``KeyError`` with a string key that a tabular data library raised is marked ``(raised by pandas)`` (or
    datasets, pyarrow, polars)."""
    return [(kind, final) for kind, final, _ in _exceptions(text)]


def final_exception(text: str) -> tuple[str, str] | None:
    """(exception type, final line) of the last Python traceback in ``text``, or None."""
    found = [f for f in final_exceptions(text)] if _TRACEBACK in text else []
    return found[-1] if found else None

@dataclass
class Classification:
    category: str
    means: str
    evidence: list[str]
    rules: list[str]
    cause: str = ""  # the ``cause`` of the first matching rule that names one (e.g. shared-memory)

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "means": self.means, "evidence": self.evidence, "rules": self.rules,
                "cause": self.cause, "remediation": REMEDIATIONS[self.category]}


def _sources(context: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Each source's (evidence line, the text the rules see): a container's lines are shown as
    "step/container: text"; status lines are read as log lines too (a cloud job's failure reason or an Argo
    message often quotes the process's last error), after every container's own lines."""
    evidence, pods = context.get("evidence") or [], context.get("pods") or []
    if not isinstance(evidence, list) or not isinstance(pods, list):
        raise StepError("the triage context's 'evidence' and 'pods' must be lists")
    status = [(str(line), str(line)) for line in evidence]
    exceptions: list[tuple[str, str]] = []
    logs: list[tuple[str, str]] = []
    for pod in pods:
        pod_logs = pod.get("logs") if isinstance(pod, dict) else None
        for container, entry in sorted(pod_logs.items() if isinstance(pod_logs, dict) else []):
            tail = str(entry.get("tail") or "") if isinstance(entry, dict) else ""
            where = f"{pod.get('step') or pod.get('name')}/{container}"
            # the last exception first: it is what the process died of
            for _, final, more in reversed(_exceptions(tail)):
                # the message's further lines are indented: they are read, but are no exception line of their own
                exceptions += [(f"{where}: {final}", final), *((f"{where}:   {line}", f"  {line}") for line in more)]
            logs += [(f"{where}: {line.strip()}", line.strip()) for line in clean_lines(tail) if line.strip()]
    return {"status": status, "exception": exceptions, "log": logs + status, "hint": status}


def classify(context: dict[str, Any]) -> Classification:
    sources = _sources(context)
    for allowed in TIERS:
        for category in PRIORITY:
            evidence: list[str] = []
            used: list[str] = []
            causes: list[str] = []
            for rule in (r for r in RULES if r.category == category and r.source in allowed):
                for line, subject in sources[rule.source]:
                    if rule.matches(subject) and line not in evidence:
                        evidence.append(line)
                        if rule.means not in used:
                            used.append(rule.means)
                        if rule.cause and rule.cause not in causes:
                            causes.append(rule.cause)
            if evidence:
                return Classification(category, used[0], evidence[:MAX_EVIDENCE], used,
                                      causes[0] if causes else "")
    return Classification("unknown", "no rule matched", [line for line, _ in sources["status"]][:MAX_EVIDENCE], [])


CONTRACT = Step(
    name="triage-classify",
    entry="hera_flows.steps.triage.classify:main",
    summary="classify the failure with the documented rule table; name its branch, title and dedupe key",
    inputs=("context",),
    outputs=("context", "category", "title", "branch", "dedupe-key"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    context = parse_json(CONTRACT.param("context", required=True), "the context")
    if context.get("pattern") != "failure_triage":
        raise StepError("the context is not a failure-triage context")
    result = classify(context)
    context["classification"] = result.as_dict()
    workflow = context.get("workflow")
    workflow = workflow if isinstance(workflow, dict) else {}
    # the pipeline's name wherever it runs (Argo WorkflowTemplate, KFP pipelineInfo.name, Flyte launch plan)
    subject = workflow.get("pipeline") or workflow.get("template") or workflow.get("name") or "workflow"
    namespace = workflow.get("namespace", "")
    key = naming.dedupe_key(namespace, subject, result.category)
    branch = naming.branch_name(BRANCH_PREFIX, subject, result.category)
    title = f"{subject}: {result.category} in {workflow.get('name', '')}".strip()
    log(f"triage-classify: {result.category} ({result.means}); evidence: {result.evidence[:3]}")
    CONTRACT.write(args.outputs, context=json.dumps(context, sort_keys=True, ensure_ascii=False),
                   category=result.category, title=f"Fix {title}", branch=branch, dedupe_key=key)
    return 0
