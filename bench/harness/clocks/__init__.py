"""GPU time without the host: stream-held timing, interleaved CUDA-graph replays, host overhead.

Three clocks per direction (forward, backward) of every implementation:
- `gpu`: each call enqueued behind a kernel that holds the stream (`hold`), so the events that
  bracket it see GPU work only; calls that synchronize inside their enqueue fall back to amortized
  back-to-back timing, and say so;
- `eager`: today's idle-queue timing (`bench.harness.timing.timed_round`), host launch time included;
- `graph`: forward and backward captured as CUDA graphs and replayed.
All three are measured in the same interleaved rounds (`interleave`, order `bench.harness.timing.round_order`)
under one stopping rule, so their per-round differences pair up (`summary.host_overhead` = eager - gpu).
`plan` decides which clocks a device can run and records why one was refused.
"""
