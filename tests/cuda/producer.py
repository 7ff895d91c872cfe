"""A delayed producer for stream-ordering tests: queues tens of milliseconds of GPU work on a stream, then
fills a tensor. A consumer launched on the wrong stream (one not ordered after it) reads the old values."""
import vibetensor.torch as vt


def delayed_fill(x, value, stream, matmuls=12):
    """On `stream`: about 12 fp32 4096^3 products (~30 ms on an H100), then x.fill_(value)."""
    with vt.cuda.stream(stream):
        a = vt.ones(4096, 4096, device=x.device)
        for _ in range(matmuls):
            a = a @ a * (1.0 / 4096)
        x.fill_(value)
    return a  # keep the chain's last result alive until the caller is done
