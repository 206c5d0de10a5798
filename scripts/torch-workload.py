#!/usr/bin/env python3
"""A deterministic PyTorch workload touching the CUDA libraries a pruning could break.

    python3 scripts/torch-workload.py run OUT.pt       # run, save every result
    python3 scripts/torch-workload.py compare A.pt B.pt  # exit 1 unless identical

GEMMs in four dtypes (cuBLAS/cuBLASLt), batched GEMM, a convolution and a transposed
convolution (cuDNN), reductions, sorting and top-k, FFTs (cuFFT), a sparse-dense product
(cuSPARSE), random numbers (cuRAND), and a short training loop with an optimizer.
"""

import os
import sys

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch

# cuSPARSE's SpMM sums with atomics: two runs of the same installation differ in the last
# bits, so this result is compared with a tolerance.
NONDETERMINISTIC = {"sparse_mm"}


def workload():
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)
    device = "cuda"
    results = {}
    base = torch.randn(512, 512, device=device)
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        a = base.to(dtype)
        results[f"gemm_{dtype}"] = (a @ a.T).float().cpu()
    batch = torch.randn(16, 64, 128, device=device)
    results["bmm"] = torch.bmm(batch, batch.transpose(1, 2)).cpu()
    images = torch.randn(8, 3, 64, 64, device=device)
    conv = torch.nn.Conv2d(3, 16, 3, padding=1).to(device)
    results["conv2d"] = conv(images).detach().cpu()
    deconv = torch.nn.ConvTranspose2d(16, 4, 4, stride=2).to(device)
    results["conv_transpose2d"] = deconv(conv(images)).detach().cpu()
    values = torch.randn(1 << 20, device=device)
    results["sum"] = values.sum().cpu()
    results["cumsum"] = values.cumsum(0).cpu()
    results["sort"] = torch.sort(values).values.cpu()
    results["topk"] = torch.topk(values, 100).values.cpu()
    results["fft"] = torch.fft.fft(values.view(1024, 1024)).cpu()
    results["rfft2"] = torch.fft.rfft2(images).cpu()
    sparse = torch.randn(256, 256, device=device).relu().to_sparse()
    results["sparse_mm"] = torch.sparse.mm(sparse, torch.randn(256, 64, device=device)).cpu()
    results["rand"] = torch.rand(1000, device=device).cpu()

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(8 * 64 * 64, 10),
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    targets = torch.randint(0, 10, (8,), device=device)
    for _ in range(5):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), targets)
        loss.backward()
        optimizer.step()
    results["training_loss"] = loss.detach().cpu()
    results["trained_weight"] = model[3].weight.detach().cpu()
    torch.cuda.synchronize()
    return results


def main():
    if sys.argv[1] == "run":
        torch.save(workload(), sys.argv[2])
        print(f"workload ran on {torch.cuda.get_device_name()} with torch from {torch.__file__}")
    elif sys.argv[1] == "compare":
        a, b = torch.load(sys.argv[2]), torch.load(sys.argv[3])
        exact = [name for name in a if name not in NONDETERMINISTIC]
        different = [name for name in exact if not torch.equal(a[name], b[name])]
        loose = [name for name in a if name in NONDETERMINISTIC and not torch.allclose(a[name], b[name], rtol=1e-5, atol=1e-5)]
        print(f"{len(exact)} results compared bit for bit, {len(different)} different {different}; "
              f"{len(a) - len(exact)} nondeterministic compared within 1e-5, {len(loose)} different {loose}")
        sys.exit(1 if different or loose or a.keys() != b.keys() else 0)


if __name__ == "__main__":
    main()
