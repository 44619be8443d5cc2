"""Search RDC depth/growth, CBAM reduction and widths that reproduce the thesis's parameter totals.

Usage: python scripts/fit_model_sizes.py [--top 5]

BatchNorm sits only in the RDC dense layers, so the thesis's non-trainable counts (Keras: moving mean and
variance, 2 per channel) fix num_layers x growth per RDC: 1,408 / 2 / 8 RDCs = 88 for the mask generator and
960 / 2 / 12 RDCs = 40 for SMFD-UNet. Widths, reductions and (for SMFD-UNet) decoder/head widths are then
searched to match the totals 5,416,159 and 7,532,601. The chosen defaults are in smfd.models.registry.
"""

import argparse
import itertools

from smfd.models import THESIS_PARAMS, MaskGenerator, SMFDUNet, count_parameters


def pairs(product: int) -> list[tuple[int, int]]:
    return [(n, product // n) for n in range(1, product + 1) if product % n == 0 and product // n >= 4]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()

    rows = []
    for base, (layers, growth), red in itertools.product(range(16, 72, 8), pairs(88), (4, 8, 16)):
        enc = (base, 2 * base, 4 * base, 8 * base)
        c = count_parameters(MaskGenerator(encoder_channels=enc, num_layers=layers, growth=growth, reduction=red))
        rows.append((c["total_keras_convention"], c["non_trainable_bn"], f"enc={enc} L={layers} g={growth} r={red}"))
    report("mask_generator", rows, args.top)

    rows = []
    for (layers, growth), red, head, dec in itertools.product(
        pairs(40), (4, 8), (32, 64), itertools.product((256, 288, 320), (128, 160), (64, 96))
    ):
        c = count_parameters(SMFDUNet(decoder_channels=dec, head_channels=head, num_layers=layers, growth=growth,
                                      reduction=red))
        rows.append((c["total_keras_convention"], c["non_trainable_bn"],
                     f"dec={dec} head={head} L={layers} g={growth} r={red}"))
    report("smfd_unet", rows, args.top)


def report(name: str, rows: list, top: int) -> None:
    target = THESIS_PARAMS[name]
    print(f"{name}: thesis total {target:,}")
    for total, nontrain, desc in sorted(rows, key=lambda r: abs(r[0] - target))[:top]:
        print(f"  {total:>11,} ({(total - target) / target:+.4%})  non-trainable {nontrain:,}  {desc}")


if __name__ == "__main__":
    main()
