.venv/bin/zoo train --recipe reference --model resnet20 --dataset cifar10 --train-limit 45000 --epochs 80 --warmup-epochs 2 --lr 0.1 --batch-size 128 --out runs/cifar/resnet-cifar10-ref --resume
