# Our fast recipe for issue 23's 60-minute runs, sourced by edge_seeds.sh and edge_levers.sh:
# SGD with Nesterov momentum, one-cycle to 0.2 after 3 warm-up epochs, batch 128, label
# smoothing 0.1, weight decay 5e-4, crop and flip.
OURS=(--optimizer sgd --learning-rate 0.2 --momentum 0.9 --nesterov --weight-decay 5e-4
      --schedule one_cycle --warmup-epochs 3 --batch-size 128 --label-smoothing 0.1
      --augment crop,flip)
