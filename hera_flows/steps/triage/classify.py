"""`hera-flows step triage-classify`: put a failure into one class, with the evidence lines that decided it.

The rule table below is the documentation (docs/patterns/failure-triage.md prints the same table). Each rule
matches one *source* of evidence with a regular expression:

- ``status``: what Kubernetes and Argo said — node and workflow messages, container termination and waiting
  reasons, Warning events, unschedulable conditions (the context's ``evidence`` lines);
- ``exception``: the final line (``Type: message``) of each Python traceback in a failing container's log tail
  (``FileNotFoundError: [Errno 2] ...``), the ``what()`` of a C++ exception that terminated the process
  (``c10::DistBackendError: ... Watchdog caught collective operation timeout``), or, when no traceback ends in an
  exception line, a line that is an error by itself (``torch.OutOfMemoryError: CUDA out of memory...``);
- ``log``: any line of a failing container's log tail;
- ``hint``: a status line that says little by itself (``1 Worker replica(s) failed``, a cluster autoscaler that
  could not add a GPU node).

Log lines are read as they really look: ANSI colours and launcher prefixes (torchrun's ``[rank0]:``, mpirun's
``[1,0]<stderr>:``, Ray's ``(RayTrainWorker pid=12)``) are taken off, ``\r``-redrawn progress keeps its last
state, a tqdm bar that the next output was glued onto is cut off, text glued before ``Traceback (most recent call
last):`` becomes a line of its own, and a traceback logged indented inside another message is dedented. A
traceback is read to its exception line even when its frames lost their indentation, when the tail was cut
inside it (it counts from its first ``File "..."`` frame), in IPython's ``KeyError    Traceback (...)`` form,
and through a wrapper that names its cause (``RayTaskError(OutOfMemoryError)``: the cause's own final line too).

The sources are consulted in tiers, most telling first — ``status``, then ``exception``, then ``log``, then
``hint`` — and within a tier the classes are tried in ``PRIORITY`` order; the first class with a matching rule
wins. The reasoning behind the order:

- what Kubernetes said beats what the process printed: a container the kernel OOM-killed beats the traceback
  it left behind; an image that could not be pulled beats the "Step exceeded its deadline" that later
  overwrote the node message; a log line never overrules a traceback;
- the node going away explains everything after it: ``eviction`` and ``preemption`` come first;
- the scheduler's verdict comes before anything the pod could have printed (``gpu-unschedulable`` before
  ``unschedulable``: a GPU shortage is the specific cause), and the cluster autoscaler's "it wouldn't fit if a
  new node is added" is only a hint (what the scheduler said about the existing nodes decides);
- memory before what memory pressure broke: ``gpu-oom`` before ``oom`` (GPU memory is specific), both before
  ``distributed`` (the rank that ran out of memory is why the others' collectives timed out);
- ``distributed`` before ``network``: a NCCL or Gloo line that says "connection refused/reset" is the job's
  ranks losing each other, not an unreachable service; ``network`` before ``image-pull``: a pull that timed
  out is a reachability problem, not a bad reference;
- the generic ones last: ``timeout`` and ``infrastructure`` (a runtime call's gRPC ``DeadlineExceeded`` is the
  runtime's, not the step deadline), then the input and code classes, ``code-bug`` ("any other exception")
  at the very end. An exception that only reports that another process died (torchrun's ``ChildFailedError``,
  ``CalledProcessError``, Ray's ``RayActorError``, papermill's ``PapermillExecutionError``, ...) is not a code
  bug by itself: the cause is looked for in the other exceptions and the log.

Nothing matching is ``unknown``: never a guessed class.
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
PRIORITY = ("eviction", "preemption", "gpu-unschedulable", "unschedulable", "gpu-oom", "oom", "distributed",
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


_NET = (r"i/o timeout|connection refused|connection reset|TLS handshake timeout|no such host|"
        r"dial tcp|network is unreachable|no route to host|context deadline exceeded|"
        r"Temporary failure in name resolution|Name or service not known|Read timed out|Connection timed out|"
        r"Failed to establish a new connection|request canceled while waiting for connection|Client\.Timeout exceeded")
_SHM = (r"insufficient shared memory|/dev/shm|\bshm\b|Bus error|\bSIGBUS\b|exitcode\s*:\s*-7\b|"
        r"shared memory object|unable to (write to|open) file </torch_")
_GPU = r"(?i:insufficient) (nvidia|amd\.com|gpu\.intel\.com)"  # nvidia.com/gpu, nvidia.com/mig-1g.5gb, ...
# exceptions that only report that another process or task died: the cause is elsewhere, not "a code bug"
_WRAPPERS = (r"ChildFailedError|CalledProcessError|RayActorError|ActorDiedError|WorkerCrashedError|NodeDiedError|"
             r"RaySystemError|KilledWorker|PapermillExecutionError|DatasetGenerationError|BrokenProcessPool")
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
RULES: tuple[Rule, ...] = (
    # what Kubernetes and Argo said
    Rule("eviction", "status",
         r"\bEvicted\b|was low on resource|exceeds its request of|ephemeral local storage usage exceeds|"
         r"The node had condition: \[(Memory|Disk|PID)Pressure\]",
         "the kubelet evicted the pod for node pressure (memory or disk), typically one with a low or no request"),
    Rule("preemption", "status",
         r"\b(Preempted|Preempting|NodeShutdown|PreemptionByScheduler|TerminationByKubelet)\b|Node is shutting|"
         r"Reason:\s+Shutdown\b|instances\.preempted|(?i:node shutdown|spot instance|spot interruption|"
         r"\b(pod|node|vm|instance|job) (was|has been|is being) preempted|"
         r"termination is imminent|host EC2 (\(instance [\w-]+\) )?terminated|"
         r"preemptible\b.*\b(preempted|reclaimed|terminated))",
         "the node was reclaimed or the pod preempted (spot, node shutdown, a higher priority)"),
    Rule("gpu-unschedulable", "status",
         r"^(?s:(?!.*(didn't trigger scale-up|wouldn't fit if a new node)).*(" + _GPU + r"|"
         r"(nvidia\.com|amd\.com)/gpu.*(Unschedulable|didn't match|untolerated)|untolerated taint \{[\w./-]*gpu))",
         "no node can offer the requested GPUs"),
    Rule("unschedulable", "status",
         r"(?i:insufficient (cpu|memory|ephemeral-storage|pods))|didn't match (Pod's )?node (affinity|selector)|"
         r"unbound (immediate )?PersistentVolumeClaims|(exceeded|failed) quota|FailedScheduling|(?i:\bunschedulable\b)|"
         r"Cannot schedule pods|0/\d+ nodes are available",
         "no node can take the pod (CPU, memory, node selector or affinity, volumes, quota)"),
    Rule("oom", "status",
         r"\bOOMKill(ed|ing)\b|exit (code|status):? ?137\b|(?i:\bOOM ?killed\b)|Memory cgroup out of memory|"
         r"(?i:out of memory: kill(ed)? process)",
         "the kernel killed the container at its memory limit (OOMKilled, or exit code 137 with no other reason)"),
    Rule("network", "status",
         rf"(?is:(pull|pulling|registry|fetch|put file|get file|upload|download|artifact|bucket).*({_NET}))|"
         rf"(?is:({_NET}).*(pull|registry))",
         "the registry or a network dependency was unreachable (not a bad image reference)"),
    Rule("image-pull", "status",
         r"\b(ImagePullBackOff|ErrImagePull|InvalidImageName|ErrImageNeverPull)\b|Failed to pull image|"
         r"Back-off pulling image|manifest unknown|pull access denied|repository does not exist|"
         r"(?i:image pull failed)",
         BAD_IMAGE),
    Rule("timeout", "status",
         r"exceeded its deadline|longer than (the )?specified deadline|Max duration limit exceeded|"
         r"(?<!code = )(?<!code=)\bDeadlineExceeded\b|activeDeadlineSeconds|DUE TO TIME LIMIT|"
         r"\b(TaskRun|PipelineRun)Timeout\b|failed to finish within",
         "a step, workflow or batch job ran past its deadline (activeDeadlineSeconds, a task timeout, a time limit)"),
    Rule("infrastructure", "status",
         r"\b(NodeLost|NodeNotReady|NotReady|ContainerCannotRun|CreateContainerError|RunContainerError)\b|"
         r"node .*not ready|failed to (create|start) (containerd )?(task|container|shim)|"
         r"OCI runtime (create|exec)|FailedCreatePodSandBox|Failed to create pod sandbox|"
         r"\b(RunPodSandbox|CreatePodSandbox|CreateContainer|StartContainer)\b.*failed|"
         r"failed to reserve (container|sandbox) name|PLEG is not healthy",
         "the node or the container runtime failed the pod (node loss, runtime error)"),
    Rule("permissions", "status",
         r"Error from server \(Forbidden\)|is forbidden: User|AccessDenied|does not have .{0,120}permission|"
         r"(?i:\bforbidden\b|access denied|permission denied|unauthori[sz]ed)",
         NO_ACCESS),
    # the exception a process died of
    Rule("gpu-oom", "exception",
         _EXC + r"(OutOfMemoryError: CUDA|OutOfMemoryError: .*GPU)|CUDA out of memory|CUDA error: out of memory|"
         r"ResourceExhaustedError|OOM when allocating|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|"
         r"(HIP|MPS|XPU)( backend)? out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|"
         r"RESOURCE_EXHAUSTED: Out of memory|No available memory for the cache blocks",
         GPU_MEMORY),
    Rule("oom", "exception",
         _EXC + r"(MemoryError|_ArrayMemoryError|OutOfMemoryError)(:|$)|killed by signal: Killed|"
         r"Cannot allocate memory|std::bad_alloc|java\.lang\.OutOfMemoryError|GC overhead limit exceeded",
         "the process could not allocate host memory, or was killed for it (the OOM killer, Ray's memory monitor)"),
    Rule("distributed", "exception", _SHM, SHARED_MEMORY, cause="shared-memory"),
    Rule("distributed", "exception",
         _EXC + r"(DistBackendError|DistNetworkError|DistStoreError)(:|$)|NCCL|ProcessGroup|collective operation|"
         r"(?i:\bgloo\b)|unhandled (system|cuda) error|remote process exited or there was a network error|"
         r"Rendezvous\w*Error|store based barrier|mismatch between collectives|Horovod\w*Error|"
         r"Horovod has been shut down",
         LOST_EACH_OTHER),
    Rule("network", "exception",
         _EXC + r"(ConnectionError|ConnectionResetError|ConnectionRefusedError|ConnectionAbortedError|TimeoutError|"
         r"ReadTimeout|ConnectTimeout|ReadTimeoutError|ConnectTimeoutError|EndpointConnectionError|"
         r"RemoteDisconnected|ProtocolError|ServiceUnavailable|gaierror|BrokenPipeError|MaxRetryError|"
         r"NewConnectionError|SSLError|ClientConnectorError)(:|$)|Max retries exceeded|"
         r"Failed to establish a new connection|Connection (refused|reset by peer|timed out)|Read timed out|"
         r"Could not connect to the endpoint URL|(?i:temporary failure in name resolution|name or service not known)|"
         r"LocalEntryNotFoundError|We couldn't connect to|(?i:check your (internet )?connection)|"
         r"failed to connect to all addresses",
         UNREACHABLE),
    Rule("permissions", "exception",
         _EXC + r"(PermissionError|AccessDenied\w*|Forbidden\w*|Unauthorized\w*|GatedRepoError|"
         r"NoCredentialsError|ClientAuthenticationError)(:|$)|AccessDenied|\b(401|403)\b.*(?i:forbidden|"
         r"unauthori[sz]ed|denied|access)|\b(401|403) Client Error|"
         r"(?i:access denied|permission denied|does not have [\w.]+ access|gated repo)|"
         r"\b(DefaultCredentialsError|AuthorizationPermissionMismatch|AuthorizationFailure|InvalidAccessKeyId|"
         r"SignatureDoesNotMatch|ExpiredToken|InvalidClientTokenId)\b|Unable to locate credentials|"
         r"Read-only file system|requested access to the resource is denied|(?i:permission .{0,80} denied)",
         NO_ACCESS),
    Rule("dependency", "exception",
         _EXC + r"(ModuleNotFoundError|ImportError)(:|$)|undefined symbol|cannot open shared object file|"
         r"no kernel image is available|CUDA driver version is insufficient|(?i:version mismatch)|"
         r"compiled (against|with) .* but|requires .* but (found|got|you have)|GLIBC\w*_[\d.]+' not found|"
         r"driver on your system is too old|(?i:found no NVIDIA driver)|unsupported toolchain",
         NOT_IN_IMAGE),
    Rule("data-missing", "exception",
         _EXC + r"(FileNotFoundError|NoSuchKey|NoSuchBucket|EmptyDataError|PathNotFoundError|NotFound|"
         r"NotFoundError|EntryNotFoundError|DatasetNotFoundError)(:|$)|" +
         _EXC + r"AnalysisException: \[PATH_NOT_FOUND\]|The specified key does not exist|Path does not exist|"
         r"\b404 Client Error|HTTP response code 404|\b404\b.{0,80}(?i:not found)|FileNotFoundException|"
         r"\b(ResourceNotFoundError|BlobNotFound)\b|The specified blob does not exist|No URLs matched|"
         r"does not appear to have a file named",
         MISSING_INPUT),
    Rule("schema-drift", "exception",
         r"(?i:schema mismatch)|No match for FieldRef|None of \[.*\] are in the \[columns\]|not in index|"
         r"(?i:columns? .*(not found|does not exist|missing))|(?i:missing columns?)|features? .* (don't|do not) match|"
         r"(?i:schema .* (does not|doesn't) match)|(?i:\bcolumns?\b[^.]{0,100}\bnot (found|present|in)\b)|"
         r"Couldn't cast\b|column names don't match|(?i:feature names (should|must) match)|"
         r"Feature names (unseen|seen) at fit time|X has \d+ features, but \w+ is expecting \d+ features|"
         r"Schema at index \d+ was different|Field \S+ has incompatible types|column cannot be converted|" +
         _EXC + r"SchemaErrors?(:|$)",
         SCHEMA_CHANGED),
    Rule("code-bug", "exception", rf"^(?![\w.]*({_WRAPPERS})\b)[A-Za-z_][\w.]*(\([\w.]+\))?(:|$)",
         "the pipeline's code raised an exception (any other exception)"),
    # any log line
    Rule("eviction", "log", r"was low on resource|which exceeds its request of|"
         r"ephemeral local storage usage exceeds|(?i:reason:? Evicted\b)",
         "the kubelet evicted the pod for node pressure (memory or disk), typically one with a low or no request"),
    Rule("preemption", "log",
         r"(?i:\b(job|pod|node|instance|vm|task) (is|was|has been|got) preempted\b|due to preemption|"
         r"termination is imminent|spot (instance )?interruption)",
         "the node was reclaimed or the job preempted (spot, a scheduler preemption)"),
    Rule("gpu-unschedulable", "log",
         r"No available node types can fulfill resource request.*'GPU'|cannot be scheduled right now.*'GPU'",
         "the Ray cluster has no node that can offer the requested GPUs"),
    Rule("unschedulable", "log",
         r"No available node types can fulfill resource request|cannot be scheduled right now",
         "the Ray cluster has no node that can take the requested resources (CPU, memory, custom)"),
    Rule("gpu-oom", "log",
         r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError: CUDA|OOM when allocating|"
         r"CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|(?i:gpu.*out of memory)|"
         r"(HIP|MPS|XPU)( backend)? out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|"
         r"RESOURCE_EXHAUSTED: Out of memory",
         GPU_MEMORY),
    Rule("oom", "log",
         r"^Killed$|: line \d+: +\d+ Killed\b|\bOOMKill(ed|ing)\b|oom-kill|running low on memory|"
         r"exit (code|status):? ?137\b|exitcode\s*:\s*-9\b|died with <Signals\.SIGKILL: 9>|killed by signal: Killed|"
         r"(?i:killed by the oom|signal 9 \(SIGKILL\)|out of memory: kill(ed)? process)|Memory cgroup out of memory|"
         r"MemoryError\b|Cannot allocate memory|std::bad_alloc|java\.lang\.OutOfMemoryError|GC overhead limit exceeded|"
         r"killed by YARN for exceeding memory limits|Memory on the node \(IP: |exceeds the memory usage threshold|"
         r"Ray killed this worker|exceeded \d+% memory budget",
         HOST_MEMORY),
    Rule("distributed", "log", _SHM, SHARED_MEMORY, cause="shared-memory"),
    Rule("distributed", "log",
         r"(?i:NCCL (error|failure|WARN))|NCCL INFO.*timeout|ncclInternalError|ncclSystemError|"
         r"ncclUnhandledCudaError|ncclRemoteError|Watchdog caught collective operation timeout|ProcessGroupNCCL|"
         r"collective operation timeout|(?i:rank \d+ .*(desync|timed out))|"
         r"(?i:\bgloo\b.*(connection (closed|reset)|timed out))|Rendezvous\w*Error|store based barrier|"
         r"mismatch between collectives|Horovod has been shut down",
         LOST_EACH_OTHER),
    Rule("network", "log",
         rf"(?i:{_NET})|Could not connect to the endpoint URL|Max retries exceeded with url|Connection (reset|refused)|"
         r"(Read|Connect)TimeoutError|LocalEntryNotFoundError|We couldn't connect to|"
         r"failed to connect to all addresses|\bE(CONNREFUSED|TIMEDOUT|CONNRESET)\b|Could not resolve host",
         UNREACHABLE),
    Rule("image-pull", "log",
         r"\b(ImagePullBackOff|ErrImagePull)\b|Failed to pull image|pull access denied|manifest unknown|"
         r"repository does not exist|manifest for \S+ not found|failed to solve: \S+: \S+: not found|"
         r"failed to resolve reference",
         BAD_IMAGE),
    Rule("timeout", "log", r"(?<!code = )(?<!code=)\bDeadlineExceeded\b|exceeded its deadline|DUE TO TIME LIMIT",
         "a step, workflow or batch job ran past its deadline (activeDeadlineSeconds, a task timeout, a time limit)"),
    Rule("permissions", "log",
         r"AccessDenied|(?i:access denied|permission denied|\bforbidden\b|gated repo)|\b401 Unauthorized\b|"
         r"does not have [\w.]+ access|is forbidden: User|Required '[\w.]+' permission|"
         r"does not have .{0,120}permission|Unable to locate credentials|Read-only file system|"
         r"requested access to the resource is denied|"
         r"\b(InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|AuthorizationPermissionMismatch)\b",
         NO_ACCESS),
    Rule("dependency", "log",
         r"ModuleNotFoundError|No module named|undefined symbol|cannot open shared object file|"
         r"no kernel image is available|CUDA driver version is insufficient|GLIBC\w*_[\d.]+' not found|"
         r"driver on your system is too old|(?i:found no NVIDIA driver)",
         NOT_IN_IMAGE),
    Rule("data-missing", "log",
         r"No such file or directory|The specified key does not exist|\bNoSuchKey\b|\bPATH_NOT_FOUND\b|"
         r"Path does not exist|(?i:file not found)|response code 404|\b404 Client Error\b|FileNotFoundException|"
         r"No URLs matched|The specified blob does not exist|does not appear to have a file named",
         MISSING_INPUT),
    Rule("schema-drift", "log",
         r"None of \[.*\] are in the \[columns\]|column names don't match|(?i:schema mismatch)|"
         r"(?i:feature names (should|must) match)|No match for FieldRef|\bnot in index\b|"
         r"Schema at index \d+ was different",
         SCHEMA_CHANGED),
    # a status line that says little by itself
    Rule("gpu-unschedulable", "hint", _GPU,
         "the cluster autoscaler found no node it could add with the requested GPUs"),
    Rule("preemption", "hint", r"replica\(s\) failed|\bpod deleted\b",
         "a pod or replica vanished with no reason given: its node was reclaimed (spot, preemptible) or drained; "
         "a rerun is the fix either way"),
)

# What the issue suggests when no clear-cut fix applies.
REMEDIATIONS: dict[str, str] = {
    "oom": "Raise the step's memory limit, or reduce what it holds in memory (batch size, chunked reading, "
           "dtype downcasting). A MemoryError inside Python can also mean the node itself is too small.",
    "image-pull": "Check the image reference (tag or digest typo, image not pushed, retention policy) and the "
                  "registry credentials (imagePullSecrets). Pin a known-good digest.",
    "data-missing": "An input the pipeline reads does not exist. Check the upstream job that produces it, the "
                    "partition or date the run asked for, and the path in the pipeline parameters.",
    "code-bug": "The pipeline code raised an exception. Reproduce it with the run's parameters and fix the code; "
                "the traceback is below.",
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
# What launchers and log readers put before each line of a process: `kubectl logs --timestamps` / `--prefix`,
# torchrun's "[rank0]:" / "[default0]:", Lightning's "[rank: 0]", mpirun's "[1,0]<stderr>:", Ray's
# "(RayTrainWorker pid=123, ip=10.0.0.1)"; one space after it.
_RANK = re.compile(r"^\s*(?:(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)|\[pod/[^\]\s]+\]|"
                   r"\[(?:rank|default|worker|local_rank)(?:: ?)?\d+\]:?|\[\d+,\d+\]<std(?:out|err)>:|"
                   r"\([^()]*\bpid=\d+[^()]*\)) ?)+")
# A tqdm progress bar ("Epoch 0:  6%|██   | 32040/500150 [6:28:43<94:39:17, 1.37it/s, loss=2.6]") that the next
# output was written onto without a newline.
_PROGRESS = re.compile(r"^[^|]*\d+%\|[^|]*\|[^\[|]*\[[^\]]*\]")
_TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:\([\w.]+\))?)(:|$)")
_BARE_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?_?[A-Z]\w*(?:\([\w.]+\))?$")  # "GatedRepoError", not "raise"
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+')
_MARKERS = re.compile(r"^[\s^~]+$")  # the ^^^^ under a frame's source line (Python 3.11+)
# An error on a line by itself (no traceback): "SomethingError: message", "torch.OutOfMemoryError: ...".
_SINGLE_ERROR = re.compile(r"^(?:[\w.]+\.)?_?[A-Z]\w*(?:Error|Exception|Exit|Denied|NotFound)\b(?:\([\w.]+\))?(?::|$)")
# IPython / Jupyter print the type first: "KeyError                 Traceback (most recent call last)".
_IPYTHON_HEADER = re.compile(r"^([A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)$")
# A C++ exception that ended the process (NCCL watchdog, c10::Error): the type, then its what() a line or two later.
_CPP_THROW = re.compile(r"terminate called after throwing an instance of '([\w:]+)'")
_CPP_WHAT = re.compile(r"^\s*what\(\):\s*(.*\S)")


def clean_lines(text: str) -> list[str]:
    """A log tail's lines as a reader sees them: ANSI colours, per-rank prefixes, the redrawn part of a ``\r``
    progress bar and a progress bar glued onto the next output taken off; text glued before a ``Traceback``
    becomes a line of its own, and a traceback indented as a whole (logged inside another message) is dedented."""
    lines = []
    indent = ""
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rsplit("\r", 1)[-1]
        bar = _PROGRESS.match(line)
        if bar and line[bar.end():].strip():
            line = line[bar.end():]
        line = _RANK.sub("", line)
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


def _final_lines(block: list[str]) -> list[tuple[str, str]]:
    """The exception line that ends a traceback's frames (frames whose indentation a rank prefix or a paste lost
    are still frames); after a wrapper that names its cause (``RayTaskError(OutOfMemoryError): ...``), also the
    final line of the cause's traceback printed under it."""
    found: list[tuple[str, str]] = []
    after_frame = False
    for line in block:
        if not line.strip() or line[:1] in (" ", "\t") or _MARKERS.match(line):
            continue
        if _FRAME.match(line):
            after_frame = True
            continue
        exception = _exception_line(line)
        if exception:
            found.append(exception)
            if "(" not in exception[0]:
                return found
            after_frame = False
            continue
        if not after_frame:
            return found
        after_frame = False  # the frame's source line
    return found


def final_exceptions(text: str) -> list[tuple[str, str]]:
    """(exception type, final line) of every Python traceback in ``text`` (a tail cut inside a traceback counts
    from its first frame) and of every C++ exception that terminated the process, in order; when no traceback
    ends in an exception, the lines that are errors by themselves (and the types IPython names in its headers)."""
    lines = clean_lines(text)
    starts = [i + 1 for i, line in enumerate(lines) if line.startswith(_TRACEBACK)]
    frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
    if frames and (not starts or frames[0] < starts[0] - 1):
        starts.insert(0, frames[0])
    found: list[tuple[int, tuple[str, str]]] = []
    for number, start in enumerate(starts):
        stop = starts[number + 1] if number + 1 < len(starts) else len(lines)
        found += [(start, final) for final in _final_lines(lines[start:stop])]
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
    return [exception for _, exception in sorted(found, key=lambda item: item[0])]


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


def _sources(context: dict[str, Any]) -> dict[str, list[str]]:
    evidence, pods = context.get("evidence") or [], context.get("pods") or []
    if not isinstance(evidence, list) or not isinstance(pods, list):
        raise StepError("the triage context's 'evidence' and 'pods' must be lists")
    status = [str(line) for line in evidence]
    exceptions: list[str] = []
    logs: list[str] = []
    for pod in pods:
        pod_logs = pod.get("logs") if isinstance(pod, dict) else None
        for container, entry in sorted(pod_logs.items() if isinstance(pod_logs, dict) else []):
            tail = str(entry.get("tail") or "") if isinstance(entry, dict) else ""
            where = f"{pod.get('step') or pod.get('name')}/{container}"
            # the last exception first: it is what the process died of
            exceptions += [f"{where}: {line}" for _, line in reversed(final_exceptions(tail))]
            logs += [f"{where}: {line.strip()}" for line in clean_lines(tail) if line.strip()]
    return {"status": status, "exception": exceptions, "log": logs, "hint": status}


def classify(context: dict[str, Any]) -> Classification:
    sources = _sources(context)
    for allowed in TIERS:
        for category in PRIORITY:
            evidence: list[str] = []
            used: list[str] = []
            causes: list[str] = []
            for rule in (r for r in RULES if r.category == category and r.source in allowed):
                for line in sources[rule.source]:
                    # exception and log lines are "step/container: text"; the rule sees the text
                    subject = line.split(": ", 1)[1] if rule.source in ("exception", "log") else line
                    if rule.matches(subject) and line not in evidence:
                        evidence.append(line)
                        if rule.means not in used:
                            used.append(rule.means)
                        if rule.cause and rule.cause not in causes:
                            causes.append(rule.cause)
            if evidence:
                return Classification(category, used[0], evidence[:MAX_EVIDENCE], used,
                                      causes[0] if causes else "")
    return Classification("unknown", "no rule matched", sources["status"][:MAX_EVIDENCE], [])


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
    subject = workflow.get("template") or workflow.get("name") or "workflow"
    namespace = workflow.get("namespace", "")
    key = naming.dedupe_key(namespace, subject, result.category)
    branch = naming.branch_name(BRANCH_PREFIX, subject, result.category)
    title = f"{subject}: {result.category} in {workflow.get('name', '')}".strip()
    log(f"triage-classify: {result.category} ({result.means}); evidence: {result.evidence[:3]}")
    CONTRACT.write(args.outputs, context=json.dumps(context, sort_keys=True, ensure_ascii=False),
                   category=result.category, title=f"Fix {title}", branch=branch, dedupe_key=key)
    return 0
