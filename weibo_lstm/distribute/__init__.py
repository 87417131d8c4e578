"""Layer 3, distribute: where training runs.

`devices` (logical CPUs, GPU memory growth, the device kind), `strategies` (one
device, the GPUs or CPUs of this machine, or a `TF_CONFIG` cluster), `cluster`
(waiting for peers, naming a failure) and `runtime.Runtime` (this process's place in
the cluster: chief, task, barrier, agreement).
"""
