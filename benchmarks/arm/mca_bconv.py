"""llvm-mca model of the NEON binary conv inner loop on Cortex-A53 / A72 / A76 (a model, not a
measurement: no ARM hardware is involved).

Cross-compiles benchmarks/arm/mca_bconv_loop.cpp (which includes the engine's
kernels/bconv_neon.cpp as it is) with aarch64-linux-gnu-g++ -O2 -mcpu=<core>, cuts out the
marked regions (one 3x3 kernel row of 8 output channels for W64 = 1, 2, 4, 8 words per tap, and
the bound: popcount + accumulate only) and runs llvm-mca on each. Prints bit-MACs per cycle of
each row region, the bound's rate, their ratio, and 1-thread time estimates of the four
reference 3x3 layers (115.6 M bit-MACs each) at the Raspberry Pi clocks, beside the peers'
published device figures. Writes JSON with --json.

Model assumptions (also in the JSON): steady state of one output pixel's dot products (loads,
XOR, popcount, accumulation, lane widening, final sums; llvm-mca repeats the region with warm
caches and perfect branch prediction); operands in L1; no edge pixels, pointer set-up, output
stage, threads or memory traffic beyond the region's loads. Real layers run slower.

    python benchmarks/arm/mca_bconv.py [--json benchmarks/results/arm_mca_bconv.json]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORES = {  # core -> (board, clock GHz used for the estimates)
    "cortex-a53": ("Raspberry Pi 3", 1.2),
    "cortex-a72": ("Raspberry Pi 4", 1.5),
    "cortex-a76": ("Raspberry Pi 5", 2.4),
}
# W64 words per tap -> the reference 3x3 layer (H x W x C, C in = C out), 115.6 M bit-MACs each.
LAYERS = {1: "56x56x64", 2: "28x28x128", 4: "14x14x256", 8: "7x7x512"}
LAYER_BIT_MACS = {k: 0 for k in LAYERS}
for _w64, _name in LAYERS.items():
    _h, _w, _c = (int(v) for v in _name.split("x"))
    LAYER_BIT_MACS[_w64] = _h * _w * _c * _c * 9  # stride 1, same padding: H*W*Cout*Cin*9
PEERS = [  # published figures on real devices (1 thread)
    ("daBNN, Pixel 1 (Kryo), 56x56x64 3x3", "1.31 ms"),
    ("daBNN, Pixel 1 (Kryo), 28x28x128 3x3", "0.96 ms"),
    ("daBNN, Pixel 1 (Kryo), 14x14x256 3x3", "0.98 ms"),
    ("daBNN, Pixel 1 (Kryo), 7x7x512 3x3", "1.28 ms"),
    ("LCE, Raspberry Pi 4B, QuickNetSmall (whole network)", "27.7 ms"),
]
CHANNELS = 8  # output channels per region (the aarch64 block of bconv_neon.cpp)
BOUND_STEPS = 12 * CHANNELS  # vector-channel steps in the bound region


def bound_region(xor: bool) -> list[str]:
    """The bound: per 128-bit vector and output channel only the popcount (cnt) and the
    accumulate (byte add), with xor=True also the XOR; no loads. Its rate is taken from llvm-mca's
    Block RThroughput (issue resources only, no dependencies): the core's throughput bound."""
    out = []
    for k in range(BOUND_STEPS):
        j = k % CHANNELS
        if xor:
            out.append(f"eor v{24 + j}.16b, v{8 + j}.16b, v{30}.16b")
        out += [f"cnt v{16 + j}.16b, v{24 + j if xor else 8 + j}.16b", f"add v{j}.16b, v{j}.16b, v{16 + j}.16b"]
    return out


def regions(asm: str) -> dict[str, list[str]]:
    """Instructions between each '// LLVM-MCA-BEGIN name' and the next '// LLVM-MCA-END',
    per function (the row template is instantiated once per W64, in source order)."""
    out: dict[str, list[str]] = {}
    cur, lines, count = None, [], {}
    for raw in asm.splitlines():
        line = raw.strip()
        m = re.match(r"//\s*LLVM-MCA-BEGIN\s+(\w+)", line)
        if m:
            cur, lines = m.group(1), []
            continue
        if cur and re.match(r"//\s*LLVM-MCA-END", line):
            count[cur] = count.get(cur, 0) + 1
            out[f"{cur}{count[cur]}"] = lines
            cur = None
            continue
        if cur is None or not line or line.startswith(("#", "//", ".")) or line.endswith(":"):
            continue
        lines.append(line)
    return out


def mca(lines: list[str], cpu: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["llvm-mca", "-mtriple=aarch64-linux-gnu", f"-mcpu={cpu}", "-iterations=200", f.name],
                       capture_output=True, text=True, check=True)
    Path(f.name).unlink()
    it = int(re.search(r"Iterations:\s+(\d+)", r.stdout).group(1))
    cyc = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1))
    rt = float(re.search(r"Block RThroughput:\s+([\d.]+)", r.stdout).group(1))
    return {"cycles_per_iteration": cyc / it, "block_rthroughput": rt, "instructions": len(lines),
            "cnt": sum(1 for s in lines if s.startswith("cnt")), "loads": sum(1 for s in lines if s.startswith("ld"))}


def rthroughput(lines: list[str], cpu: str) -> float:
    """llvm-mca's Block RThroughput (cycles per pass, issue resources only) of a hand-written
    sequence: the throughput bound of the instructions an op is made of."""
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["llvm-mca", "-mtriple=aarch64-linux-gnu", f"-mcpu={cpu}", "-mattr=+dotprod", f.name],
                       capture_output=True, text=True, check=True)
    Path(f.name).unlink()
    return float(re.search(r"Block RThroughput:\s+([\d.]+)", r.stdout).group(1))


# Non-binary ops of a network: the instruction each step of the NEON kernel needs at least, as an
# llvm-mca throughput bound (cycles per instruction, 64 independent copies) and the work one
# instruction does. A lower bound on those ops' time: no loads, address arithmetic or reductions.
NON_BINARY = {
    "conv2d_u8": ("smlal v{d}.4s, v30.4h, v31.4h", 4, "int8 conv without the dot product: 4 MACs per smlal"),
    "conv2d_u8+dotprod": ("sdot v{d}.4s, v30.16b, v31.16b", 16, "int8 conv with the dot product: 16 MACs per sdot"),
    "maxpool2d": ("and v{d}.16b, v30.16b, v31.16b", 128, "max pool on bits: 128 bits per AND per window tap"),
    "dense_f32": ("fmla v{d}.4s, v30.4s, v31.4s", 4, "float dense: 4 multiply-adds per fmla"),
}


def network_estimate(path: Path, cpu: str, ghz: float, px_cycles: dict, dense_rate: float, dram_gbs: float,
                     dotprod: bool) -> dict:
    """1-thread time estimate of a network file (ops and shapes from the runtime's loader): binary
    3x3 stride-1 convolutions at the row region's cycles per output pixel and 8 output channels (every
    pixel counted with all 9 taps), binary dense layers at `dense_rate` bit-MACs per cycle or their
    packed weights streamed from DRAM at `dram_gbs`, whichever is slower, the other ops at the
    throughput bound of their NEON instruction (NON_BINARY). Ops the model does not cover are listed."""
    from onebit.runtime import format as fmt  # the runtime's loader (no torch)

    m = fmt.load(path)
    bound = {k: rthroughput([v[0].format(d=d) for d in range(24)], cpu) / 24 for k, v in NON_BINARY.items()}
    ops, skipped = [], []
    for op in m.ops:
        xin, out = m.values[op.inputs[0]].shape, m.values[op.output].shape
        a = op.attrs
        if op.type == "bconv2d":
            kh, kw = a["kernel"]
            w64 = (a["in_channels"] + 63) // 64
            if (kh, kw) != (3, 3) or a["stride"] != [1, 1] or w64 not in px_cycles:
                skipped.append(op.name)
                continue
            cyc = out[0] * out[1] * -(-a["out_channels"] // CHANNELS) * px_cycles[w64]
            ops.append({"op": op.name, "type": op.type, "w64": w64, "cycles": cyc, "basis": f"row region W64={w64}"})
        elif op.type == "bdense":
            bits = a["in_features"] * a["out_features"]
            compute = bits / dense_rate
            memory = bits / 8 / (dram_gbs * 1e9) * ghz * 1e9
            ops.append({"op": op.name, "type": op.type, "cycles": max(compute, memory),
                        "basis": "weights from DRAM" if memory > compute else "row region W64=8 rate"})
        elif op.type in ("conv2d_u8", "maxpool2d", "dense_f32"):
            key = "conv2d_u8+dotprod" if op.type == "conv2d_u8" and dotprod else op.type
            if op.type == "conv2d_u8":
                work = out[0] * out[1] * a["out_channels"] * a["kernel"][0] * a["kernel"][1] * a["in_channels"]
            elif op.type == "maxpool2d":
                work = out[0] * out[1] * out[2] * a["kernel"][0] * a["kernel"][1]  # output bits x window taps
            else:
                work = a["in_features"] * a["out_features"]
            ops.append({"op": op.name, "type": op.type, "cycles": work / NON_BINARY[key][1] * bound[key],
                        "basis": NON_BINARY[key][2]})
        elif op.type == "flatten":
            continue  # a view: no work
        else:
            skipped.append(op.name)
    total = sum(o["cycles"] for o in ops)
    binary = sum(o["cycles"] for o in ops if o["type"] in ("bconv2d", "bdense"))
    return {"network": path.stem, "core": cpu, "clock_ghz": ghz, "ops": ops, "not_modelled": skipped,
            "binary_ms": binary / (ghz * 1e9) * 1e3, "other_ms": (total - binary) / (ghz * 1e9) * 1e3,
            "estimated_1thread_ms": total / (ghz * 1e9) * 1e3, "dram_gbs_assumed": dram_gbs}


def model_name(cpu: str) -> str:
    """A fingerprint of the scheduling model llvm-mca uses for `cpu` (its resource names)."""
    r = subprocess.run(["llvm-mca", "-mtriple=aarch64-linux-gnu", f"-mcpu={cpu}", "-resource-pressure"],
                       input="add v0.16b, v0.16b, v1.16b\ncnt v2.16b, v3.16b\n", capture_output=True, text=True)
    return "\n".join(line for line in r.stdout.splitlines() if re.match(r"\[\d[\d.]*\]\s+-\s", line))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the records here")
    ap.add_argument("--network", default="cifar-binarynet",
                    help="zoo network (benchmarks/make_zoo_models.py, random weights) estimated on the "
                         "Raspberry Pi 4 core, or a .onebit file; '' for none")
    ap.add_argument("--dram-gbs", type=float, default=4.0,
                    help="assumed DRAM bandwidth of one core in GB/s (binary dense weights), not measured")
    args = ap.parse_args(argv)
    for tool in ("aarch64-linux-gnu-g++", "llvm-mca"):
        if not shutil.which(tool):
            print(f"{tool} not found (apt-get install crossbuild-essential-arm64 llvm)", file=sys.stderr)
            return 2
    version = subprocess.run(["llvm-mca", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"LLVM version ([\d.]+)", version).group(1)
    records, px_cycles, dense_rate = [], {}, {}
    print("llvm-mca model (not a measurement) of the NEON binary conv inner loop, one 3x3 output pixel x 8 "
          f"output channels; LLVM {version}")
    print("bound = cnt + add throughput per 128-bit vector (the bound the ratio column uses); +eor = with the XOR every "
          "binary dot product needs")
    print(f"{'core':<11} {'W64':>3} {'layer':<10} {'cyc/px':>8} {'bitMAC/cyc':>10} {'bound':>7} {'ratio':>6} "
          f"{'+eor':>7} {'ratio':>6} {'est. ms @GHz':>13}")
    for cpu, (board, ghz) in CORES.items():
        with tempfile.TemporaryDirectory() as tmp:
            s = Path(tmp) / "mca.s"
            subprocess.run(["aarch64-linux-gnu-g++", "-std=c++17", "-O2", "-ffp-contract=off", f"-mcpu={cpu}",
                            f"-I{ROOT / 'src/cpp'}", "-S", str(HERE / "mca_bconv_loop.cpp"), "-o", str(s)],
                           check=True)
            regs = regions(s.read_text())
        bound = mca(bound_region(False), cpu)
        bound_rate = BOUND_STEPS * 128 / bound["block_rthroughput"]
        bound_x = mca(bound_region(True), cpu)
        bound_x_rate = BOUND_STEPS * 128 / bound_x["block_rthroughput"]
        for i, w64 in enumerate(sorted(LAYERS), start=1):
            row = mca(regs[f"row{i}"], cpu)
            bit_macs = 9 * w64 * 64 * CHANNELS  # one output pixel: 3 rows of 3 taps
            rate = bit_macs / row["cycles_per_iteration"]
            est_ms = LAYER_BIT_MACS[w64] / (rate * ghz * 1e9) * 1e3
            px_cycles.setdefault(cpu, {})[w64] = row["cycles_per_iteration"]
            dense_rate[cpu] = rate  # the last (W64 = 8) region: binary dense layers' long rows
            print(f"{cpu:<11} {w64:>3} {LAYERS[w64]:<10} {row['cycles_per_iteration']:>8.1f} {rate:>10.1f} "
                  f"{bound_rate:>7.1f} {rate / bound_rate:>6.0%} {bound_x_rate:>7.1f} {rate / bound_x_rate:>6.0%} "
                  f"{est_ms:>8.2f} @{ghz}")
            records.append({"kind": "llvm-mca model", "core": cpu, "board": board, "clock_ghz": ghz, "w64": w64,
                            "layer": LAYERS[w64], "layer_bit_macs": LAYER_BIT_MACS[w64], "region": row,
                            "bit_macs_per_cycle": rate, "bound": bound, "bound_bit_macs_per_cycle": bound_rate,
                            "ratio_to_bound": rate / bound_rate, "bound_with_xor_bit_macs_per_cycle": bound_x_rate,
                            "ratio_to_bound_with_xor": rate / bound_x_rate, "estimated_1thread_ms": est_ms, "llvm": version})
    networks = []
    if args.network:
        path = Path(args.network)
        tmp = None
        if path.suffix != ".onebit":
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from make_zoo_models import make  # torch: the zoo network with random weights

            tmp = tempfile.TemporaryDirectory()
            path = make(args.network, Path(tmp.name))
        cpu, (board, ghz) = "cortex-a72", CORES["cortex-a72"]
        est = network_estimate(path, cpu, ghz, px_cycles[cpu], dense_rate[cpu], args.dram_gbs, dotprod=False)
        est["board"] = board
        networks.append(est)
        print(f"\n{est['network']} on {board} ({cpu}, {ghz} GHz, 1 thread), model: "
              f"{est['estimated_1thread_ms']:.2f} ms (binary layers {est['binary_ms']:.2f} ms, other ops "
              f"{est['other_ms']:.2f} ms; dense weights from DRAM at an assumed {args.dram_gbs:g} GB/s)")
        for o in est["ops"]:
            print(f"  {o['op']:<8} {o['type']:<10} {o['cycles'] / (ghz * 1e6):8.3f} ms  ({o['basis']})")
        if est["not_modelled"]:
            print(f"  not modelled: {', '.join(est['not_modelled'])}")
        if tmp:
            tmp.cleanup()
    print("\npublished peer figures on real devices (1 thread):")
    for name, value in PEERS:
        print(f"  {name}: {value}")
    same = [c for c in CORES if c != "cortex-a72" and model_name(c) == model_name("cortex-a72")]
    if same:
        print(f"\nnote: LLVM {version} schedules {', '.join(same)} with the cortex-a72 model (their rows differ "
              "only by the code GCC emits for that -mcpu); they are not a model of that core.")
    print("\nassumptions: steady state of one output pixel's dot products (8 channels), operands in L1, no "
          "edges / pointer set-up / output stage / threads; real layers are slower than these estimates.")
    if args.json:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        meta = {"commit": commit, "compiler": "aarch64-linux-gnu-g++ -O2", "assumptions": "llvm-mca steady state of one output pixel's dot products (loads, XOR, popcount, "
                "accumulation, lane widening, final sums) for 8 output channels; L1-resident operands; no "
                "edges, pointer set-up, output stage, threads or memory traffic beyond the region's loads",
                "peers": PEERS}
        meta["network_assumptions"] = (
            "binary 3x3 convolutions: the row region's cycles per output pixel and 8 output channels, every "
            "pixel with all 9 taps (edge pixels cost less); binary dense layers: the W64 = 8 region's rate or "
            f"their packed weights streamed from DRAM at an assumed {args.dram_gbs:g} GB/s, whichever is "
            "slower; int8 conv, bit max pooling and float dense: llvm-mca's throughput bound of their NEON "
            "multiply-accumulate (smlal, no dot product on Cortex-A72), AND or fmla alone; output stages "
            "(thresholds, bit packing), pointer set-up and threads not modelled")
        Path(args.json).write_text(json.dumps({"meta": meta, "records": records, "networks": networks}, indent=1)
                                   + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
