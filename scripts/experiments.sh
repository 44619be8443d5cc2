#!/usr/bin/env bash
# Every training run and evaluation behind results/ and the shipped weights, at the configs/cpu.yaml budget.
# Two lanes of one-thread runs share a 2-core CPU (run them side by side; lane b's evaluations wait for the
# lane-a models they need). Re-running resumes: finished runs are skipped, unfinished ones continue.
# Stage "more" is the second CPU working day: it continues the four deblurring nets of the comparison for 8 more
# epochs each from their day-one weights (model.init), equal budgets again, into OUT/more; then the mask generator
# and UNet for 4 more epochs each (the shipped deblurring net keeps the day-one generator it was trained with).
# Stage "day3" is the third working day: the same again from the day-two weights into OUT/day3, at the learning
# rate the thesis's plateau schedule steps down to (1e-3 x 0.2 = 2e-4), which the short day-two runs rarely reached;
# it also scores the SMFD-UNets with keep_mean on (the colour check; the shipped bundle has it on).
# Stage "day4" is the fourth working day, for the mask nets: the 64 px crops of a 256 px face they were trained on
# are too small a view to tell background, skin and hair apart (day three's generator labelled 12% of the background
# as background). Both nets continue from their day-three weights on whole faces at 128 px, and run at 128 px
# (model option work_size: blurry face area-downscaled, logits resized back); then the day-three SMFD-UNets are
# scored with the day-four generator's masks, and the keep_mean rows again (keep_mean now holds after clipping);
# last, the generated-mask SMFD-UNet continues for one epoch on the day-four generator's masks.
# Stage "day5" is the fifth working day, at lr 2e-4: the generated-mask SMFD-UNet continues on the day-four
# generator's masks for 6 more epochs, and the no-mask SMFD-UNet for the 7 epochs it now lags (one of day four, six of
# day five) so their comparison stays at equal budgets; both mask nets continue for 4 more epochs on whole faces.
# Stage "day6" is the sixth: the ground-truth-mask SMFD-UNet and NAFNet catch up to 27 epochs, every deblurring net
# is scored with test-time local statistics (see lane_m), and the shipped SMFD-UNet is fine-tuned on 128 px crops.
# Stage "day7" is the seventh: UNet++ (3 epochs of 64 px crops on day one) continues on whole faces at 128 px like the
# other two mask nets did on day four, and the ablation variants and cross-validation folds are scored again with
# test-time local statistics (pool_window=64, as the shipped net runs); then the ablation is run again from scratch with
# the current code, and the thesis-exact SMFD-UNet (no residual) trained at the full CPU budget for 4 epochs.
# Usage: bash scripts/experiments.sh {a|b|all|more|day3|day4|day5|day6|day7} [DATA] [OUT]
set -euo pipefail
LANE=${1:-all}
D=${2:-../shared/data/synthface}
R=${3:-runs/exp}
S=".venv/bin/smfd"
C=(-c configs/cpu.yaml --data "$D")
reduced=(--set data.train_limit=480 --set epochs=2 --set data.val_limit=8)  # ablation and CV scale
crops=(--set data.crop=64 --set 'model.kwargs={}')  # days one to three's mask nets: 64 px crops, run at 256 px
mkdir -p "$R"

train() {  # TASK RUN ARGS...: train, or resume an unfinished run; RUN/DONE marks a finished one
    if [ -f "$2/DONE" ]; then return; fi
    if [ -f "$2/last.pt" ]; then $S train "$1" --resume "$2"; else $S train "$1" -o "$2" "${@:3}"; fi
    touch "$2/DONE"
}
wait_for() { while [ ! -f "$1/DONE" ]; do sleep 20; done; }
evaluate() {  # OUT ARGS...: score on the test split unless done
    if [ -f "$1/summary.json" ]; then return; fi
    $S eval -o "$1" --data "$D" "${@:2}"
}
split=(--split-file "$R/deblur-gt/split.json")
id=(--limit 100 --identity)

lane_a() {
    train mask "$R/mask" "${C[@]}" "${crops[@]}"
    train deblur "$R/deblur-gen" "${C[@]}" --mask-source "generator:$R/mask"
    evaluate "$R/eval/mask" --model "$R/mask" --limit 100
    evaluate "$R/eval/deblur-gen" --model "$R/deblur-gen" --mask-source "generator:$R/mask" "${id[@]}"
    wait_for "$R/deblur-gt"
    evaluate "$R/eval/deblur-gt-genmask" --model "$R/deblur-gt" --mask-source "generator:$R/mask" "${id[@]}"
    train mask "$R/mask-unet" "${C[@]}" "${crops[@]}" --set model.name=unet
    evaluate "$R/eval/mask-unet" --model "$R/mask-unet" --limit 100
    $S cv deblur "${C[@]}" -o "$R/cv" --folds 5 "${reduced[@]}" --test-limit 20
    # at the ablation's scale: the colour-drift check (post-processing around each channel's own mean) and
    # the thesis-exact net without the global residual that configs/cpu.yaml adds
    train deblur "$R/ablate-per-channel-post" "${C[@]}" "${reduced[@]}" --set model.kwargs.per_channel_post=true
    evaluate "$R/eval/ablate-per-channel-post" --model "$R/ablate-per-channel-post" --limit 40
    train deblur "$R/ablate-no-residual" "${C[@]}" "${reduced[@]}" --set model.kwargs.residual=false
    evaluate "$R/eval/ablate-no-residual" --model "$R/ablate-no-residual" --limit 40
}

lane_b() {
    train deblur "$R/deblur-gt" "${C[@]}"
    train deblur "$R/deblur-nomask" "${C[@]}" --set model.name=smfd_unet_no_mask
    train deblur "$R/nafnet" "${C[@]}" --set model.name=nafnet --set 'model.kwargs={}'
    evaluate "$R/eval/input" --model input "${split[@]}" "${id[@]}"
    evaluate "$R/eval/deblur-gt" --model "$R/deblur-gt" "${id[@]}"
    evaluate "$R/eval/deblur-nomask" --model "$R/deblur-nomask" "${id[@]}"
    evaluate "$R/eval/nafnet" --model "$R/nafnet" "${id[@]}"
    train mask "$R/mask-unetpp" "${C[@]}" "${crops[@]}" --set model.name=unet_plusplus
    evaluate "$R/eval/mask-unetpp" --model "$R/mask-unetpp" --limit 100
    $S ablate "${C[@]}" -o "$R/ablate" "${reduced[@]}" --test-limit 40
}

# day two: 8 more epochs for each deblurring net from its day-one best weights (fresh optimizer, same recipe)
more=(--set epochs=8 --set early_stop=3)
M="$R/more"
lane_c() {
    wait_for "$R/deblur-gen"; wait_for "$R/nafnet"
    train deblur "$M/deblur-gen" "${C[@]}" "${more[@]}" --mask-source "generator:$R/mask" \
        --set "model.init=$R/deblur-gen/best.safetensors"
    evaluate "$M/eval/deblur-gen" --model "$M/deblur-gen" --mask-source "generator:$R/mask" "${id[@]}"
    train deblur "$M/nafnet" "${C[@]}" "${more[@]}" --set model.name=nafnet --set 'model.kwargs={}' \
        --set "model.init=$R/nafnet/best.safetensors"
    evaluate "$M/eval/nafnet" --model "$M/nafnet" "${id[@]}"
}
lane_d() {
    wait_for "$R/deblur-gt"; wait_for "$R/deblur-nomask"
    train deblur "$M/deblur-gt" "${C[@]}" "${more[@]}" --set "model.init=$R/deblur-gt/best.safetensors"
    train deblur "$M/deblur-nomask" "${C[@]}" "${more[@]}" --set model.name=smfd_unet_no_mask \
        --set "model.init=$R/deblur-nomask/best.safetensors"
    evaluate "$M/eval/deblur-gt" --model "$M/deblur-gt" "${id[@]}"
    evaluate "$M/eval/deblur-nomask" --model "$M/deblur-nomask" "${id[@]}"
    evaluate "$M/eval/deblur-gt-genmask" --model "$M/deblur-gt" --mask-source "generator:$R/mask" "${id[@]}"
}

lane_e() {
    train mask "$M/mask" "${C[@]}" "${crops[@]}" --set early_stop=3 --set "model.init=$R/mask/best.safetensors"
    evaluate "$M/eval/mask" --model "$M/mask" --limit 100
}
lane_f() {
    train mask "$M/mask-unet" "${C[@]}" "${crops[@]}" --set early_stop=3 --set model.name=unet \
        --set "model.init=$R/mask-unet/best.safetensors"
    evaluate "$M/eval/mask-unet" --model "$M/mask-unet" --limit 100
}

# day three: every net of day two continued from its day-two best weights at lr 2e-4 (deblurring 8 epochs, masks 4)
day3=(--set optim.lr=2e-4 --set early_stop=3)
T="$R/day3"
lane_g() {
    train deblur "$T/deblur-gen" "${C[@]}" "${day3[@]}" --set epochs=8 --mask-source "generator:$R/mask" \
        --set "model.init=$M/deblur-gen/best.safetensors"
    evaluate "$T/eval/deblur-gen" --model "$T/deblur-gen" --mask-source "generator:$R/mask" "${id[@]}"
    evaluate "$T/eval/deblur-gen-keep-mean" --model "$T/deblur-gen" --mask-source "generator:$R/mask" "${id[@]}" \
        --model-option keep_mean=true  # the colour check: the same net, each channel's mean kept from the input
    train deblur "$T/nafnet" "${C[@]}" "${day3[@]}" --set epochs=8 --set model.name=nafnet --set 'model.kwargs={}' \
        --set "model.init=$M/nafnet/best.safetensors"
    evaluate "$T/eval/nafnet" --model "$T/nafnet" "${id[@]}"
    train mask "$T/mask" "${C[@]}" "${crops[@]}" "${day3[@]}" --set "model.init=$M/mask/best.safetensors"
    evaluate "$T/eval/mask" --model "$T/mask" --limit 100
}
lane_h() {
    train deblur "$T/deblur-gt" "${C[@]}" "${day3[@]}" --set epochs=8 --set "model.init=$M/deblur-gt/best.safetensors"
    train deblur "$T/deblur-nomask" "${C[@]}" "${day3[@]}" --set epochs=8 --set model.name=smfd_unet_no_mask \
        --set "model.init=$M/deblur-nomask/best.safetensors"
    evaluate "$T/eval/deblur-gt" --model "$T/deblur-gt" "${id[@]}"
    evaluate "$T/eval/deblur-gt-keep-mean" --model "$T/deblur-gt" "${id[@]}" --model-option keep_mean=true
    evaluate "$T/eval/deblur-nomask" --model "$T/deblur-nomask" "${id[@]}"
    evaluate "$T/eval/deblur-nomask-keep-mean" --model "$T/deblur-nomask" "${id[@]}" --model-option keep_mean=true
    evaluate "$T/eval/deblur-gt-genmask" --model "$T/deblur-gt" --mask-source "generator:$R/mask" "${id[@]}"
    train mask "$T/mask-unet" "${C[@]}" "${crops[@]}" "${day3[@]}" --set model.name=unet \
        --set "model.init=$M/mask-unet/best.safetensors"
    evaluate "$T/eval/mask-unet" --model "$T/mask-unet" --limit 100
}

# day four: the mask nets on whole faces at 128 px (8 epochs of 600 faces, lr 1e-3 again for the new task)
whole=(--set data.crop=null --set model.kwargs.work_size=128 --set epochs=8 --set early_stop=3)
F4="$R/day4"
lane_i() {
    train mask "$F4/mask" "${C[@]}" "${whole[@]}" --set "model.init=$T/mask/best.safetensors"
    evaluate "$F4/eval/mask" --model "$F4/mask" --limit 100
    evaluate "$F4/eval/deblur-gen-day3-keep-mean" --model "$T/deblur-gen" --mask-source "generator:$F4/mask" \
        "${id[@]}" --model-option keep_mean=true
    evaluate "$F4/eval/deblur-gt-genmask" --model "$T/deblur-gt" --mask-source "generator:$F4/mask" "${id[@]}"
    # the day-three generated-mask net learnt to do without the day-one generator's poor masks and scores lower on
    # the day-four generator's: one epoch on the new masks (the time day four had left; 2 threads: it ran alone)
    train deblur "$F4/deblur-gen" "${C[@]}" "${day3[@]}" --set epochs=1 --set threads=2 \
        --mask-source "generator:$F4/mask" --set "model.init=$T/deblur-gen/best.safetensors"
    evaluate "$F4/eval/deblur-gen-keep-mean" --model "$F4/deblur-gen" --mask-source "generator:$F4/mask" "${id[@]}" \
        --model-option keep_mean=true
}
lane_j() {
    train mask "$F4/mask-unet" "${C[@]}" "${whole[@]}" --set model.name=unet \
        --set "model.init=$T/mask-unet/best.safetensors"
    evaluate "$F4/eval/mask-unet" --model "$F4/mask-unet" --limit 100
    # keep_mean now holds for the output clipped to [0, 1]: the keep_mean rows again, and the shipped net on the
    # day-one generator's masks, which tells the new masks' effect from keep_mean's
    evaluate "$F4/eval/deblur-gt-keep-mean" --model "$T/deblur-gt" "${id[@]}" --model-option keep_mean=true
    evaluate "$F4/eval/deblur-nomask-keep-mean" --model "$T/deblur-nomask" "${id[@]}" --model-option keep_mean=true
    evaluate "$F4/eval/deblur-gen-keep-mean-day1-masks" --model "$T/deblur-gen" --mask-source "generator:$R/mask" \
        "${id[@]}" --model-option keep_mean=true
}

# day five: lr 2e-4 for every net, from its day-four weights (the no-mask net from its day-three weights)
F5="$R/day5"
lane_k() {
    train deblur "$F5/deblur-gen" "${C[@]}" "${day3[@]}" --set epochs=6 --mask-source "generator:$F4/mask" \
        --set "model.init=$F4/deblur-gen/best.safetensors"
    evaluate "$F5/eval/deblur-gen-keep-mean" --model "$F5/deblur-gen" --mask-source "generator:$F4/mask" "${id[@]}" \
        --model-option keep_mean=true
    train deblur "$F5/deblur-nomask" "${C[@]}" "${day3[@]}" --set epochs=7 --set model.name=smfd_unet_no_mask \
        --set "model.init=$T/deblur-nomask/best.safetensors"
    evaluate "$F5/eval/deblur-nomask-keep-mean" --model "$F5/deblur-nomask" "${id[@]}" --model-option keep_mean=true
}
whole5=(--set data.crop=null --set model.kwargs.work_size=128 --set epochs=4 "${day3[@]}")
lane_l() {
    train mask "$F5/mask" "${C[@]}" "${whole5[@]}" --set "model.init=$F4/mask/best.safetensors"
    evaluate "$F5/eval/mask" --model "$F5/mask" --limit 100
    train mask "$F5/mask-unet" "${C[@]}" "${whole5[@]}" --set model.name=unet \
        --set "model.init=$F4/mask-unet/best.safetensors"
    evaluate "$F5/eval/mask-unet" --model "$F5/mask-unet" --limit 100
    # the continued SMFD-UNet on the day-five generator's masks too (fine-tuned at lr 2e-4 from the one it trained on)
    wait_for "$F5/deblur-gen"
    evaluate "$F5/eval/deblur-gen-keep-mean-day5-masks" --model "$F5/deblur-gen" --mask-source "generator:$F5/mask" \
        "${id[@]}" --model-option keep_mean=true
}

# day six: the ground-truth-mask SMFD-UNet and NAFNet continued for the 7 epochs they lagged (lr 2e-4, from their
# day-three weights), so every deblurring net of the comparison has had 27 epochs; and every deblurring net scored
# with test-time local statistics (pool_window=64, the training crop's side: channel attention and post-processing
# pool over 64 px windows instead of the whole 256 px face, as in training), the shipped one's day-five scoring
# without them being the comparison
F6="$R/day6"
local=(--model-option pool_window=64)
lane_m() {
    train deblur "$F6/deblur-gt" "${C[@]}" "${day3[@]}" --set epochs=7 --set "model.init=$T/deblur-gt/best.safetensors"
    train deblur "$F6/nafnet" "${C[@]}" "${day3[@]}" --set epochs=7 --set model.name=nafnet --set 'model.kwargs={}' \
        --set "model.init=$T/nafnet/best.safetensors"
    evaluate "$F6/eval/deblur-gt-keep-mean" --model "$F6/deblur-gt" "${id[@]}" --model-option keep_mean=true "${local[@]}"
    evaluate "$F6/eval/nafnet" --model "$F6/nafnet" "${id[@]}" "${local[@]}"
    evaluate "$F6/eval/deblur-gt-keep-mean-global-pool" --model "$F6/deblur-gt" "${id[@]}" --model-option keep_mean=true
}
lane_n() {
    evaluate "$F6/eval/deblur-gen-keep-mean-day5-masks" --model "$F5/deblur-gen" --mask-source "generator:$F5/mask" \
        "${id[@]}" --model-option keep_mean=true "${local[@]}"
    evaluate "$F6/eval/deblur-nomask-keep-mean" --model "$F5/deblur-nomask" "${id[@]}" --model-option keep_mean=true \
        "${local[@]}"
    wait_for "$F6/nafnet"  # the day-six NAFNet without local statistics too (the SMFD-UNets': lane_m, day five)
    evaluate "$F6/eval/nafnet-global-pool" --model "$F6/nafnet" "${id[@]}"
}
# 128 px crops: the shipped SMFD-UNet (day five) fine-tuned on crops twice the side (4x the context its attention pools
# over; 600 faces x 2 epochs, about the time of 1,200 x 4 at 64 px), then scored with 128 px windows; and the
# ground-truth-mask net of lane m on the day-five generator's masks
lane_o() {
    train deblur "$F6/deblur-gen-crop128" "${C[@]}" "${day3[@]}" --set epochs=2 --set data.crop=128 \
        --set data.train_limit=600 --mask-source "generator:$F5/mask" --set "model.init=$F5/deblur-gen/best.safetensors"
    evaluate "$F6/eval/deblur-gen-keep-mean-crop128" --model "$F6/deblur-gen-crop128" \
        --mask-source "generator:$F5/mask" "${id[@]}" --model-option keep_mean=true --model-option pool_window=128
    wait_for "$F6/deblur-gt"
    evaluate "$F6/eval/deblur-gt-genmask" --model "$F6/deblur-gt" --mask-source "generator:$F5/mask" "${id[@]}" \
        --model-option keep_mean=true "${local[@]}"
}

# day seven: UNet++ on whole faces at 128 px from its day-one weights, at lr 1e-3 as the other mask nets on day four
# (4 epochs: ~30 min each, 2.5x UNet's compute); the ablation and the CV folds rescored with pool_window=64
F7="$R/day7"
lane_p() {
    train mask "$F7/mask-unetpp" "${C[@]}" "${whole[@]}" --set epochs=4 --set model.name=unet_plusplus \
        --set "model.init=$R/mask-unetpp/best.safetensors"
    evaluate "$F7/eval/mask-unetpp" --model "$F7/mask-unetpp" --limit 100
}
lane_q() {
    for v in smfd_unet_no_mask smfd_unet_plain_up smfd_unet_transpose_up smfd_unet_no_post smfd_unet; do
        evaluate "$F7/eval/ablate/$v" --model "$R/ablate/$v" --limit 40 "${local[@]}"
    done
    for v in ablate-per-channel-post ablate-no-residual; do
        evaluate "$F7/eval/$v" --model "$R/$v" --limit 40 "${local[@]}"
    done
    for k in 0 1 2 3 4; do
        evaluate "$F7/eval/cv/fold$k" --model "$R/cv/fold$k" --limit 20 "${local[@]}"
    done
}
# the ablation again from scratch with the current code (ICNR-initialised PixelShuffle upsamplers, which the day-one
# ablation predates; pool_window=64 from configs/cpu.yaml, so validated and scored with local statistics), same scale
A7="$F7/ablate-current"
lane_r() {
    $S ablate "${C[@]}" -o "$A7" "${reduced[@]}" --test-limit 40
    train deblur "$A7/per-channel-post" "${C[@]}" "${reduced[@]}" --set model.kwargs.per_channel_post=true
    evaluate "$A7/eval/per-channel-post" --model "$A7/per-channel-post" --limit 40
    train deblur "$A7/no-residual" "${C[@]}" "${reduced[@]}" --set model.kwargs.residual=false
    evaluate "$A7/eval/no-residual" --model "$A7/no-residual" --limit 40
    evaluate "$A7/eval/no-residual-keep-mean" --model "$A7/no-residual" --limit 40 --model-option keep_mean=true
}
# the thesis-exact SMFD-UNet (no global residual) at the full CPU budget for the time day seven had left (4 epochs from
# scratch, ground-truth masks; lr 1e-3): at the ablation's scale it had the best SSIM of any variant
lane_s() {
    train deblur "$F7/deblur-gt-no-residual" "${C[@]}" --set model.kwargs.residual=false --set epochs=4 --set early_stop=3
    evaluate "$F7/eval/deblur-gt-no-residual" --model "$F7/deblur-gt-no-residual" "${id[@]}"
    evaluate "$F7/eval/deblur-gt-no-residual-keep-mean" --model "$F7/deblur-gt-no-residual" "${id[@]}" \
        --model-option keep_mean=true
}

case "$LANE" in
    a) lane_a ;;
    b) lane_b ;;
    all) lane_a & lane_b & wait ;;
    more) (lane_c; lane_e) & (lane_d; lane_f) & wait ;;
    day3) lane_g & lane_h & wait ;;
    day4) lane_i & lane_j & wait ;;
    day5) lane_k & lane_l & wait ;;
    day6) lane_m & (lane_n; lane_o) & wait ;;
    day7) lane_p & (lane_q; lane_r; lane_s) & wait ;;
    m) lane_m ;;
    n) lane_n ;;
    o) lane_o ;;
    p) lane_p ;;
    q) lane_q ;;
    r) lane_r ;;
    s) lane_s ;;
    *) echo "usage: $0 {a|b|all|more|day3|day4|day5|day6|day7} [DATA] [OUT]" >&2; exit 2 ;;
esac
