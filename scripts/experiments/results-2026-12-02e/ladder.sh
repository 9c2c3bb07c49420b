export OMP_NUM_THREADS=1
export PYTHONPATH=/work/exp/code6
cd /work/exp/c4ladder
date
/work/exp/venv/bin/python -m rltransfer ladder random greedy mcts:10 mcts:30 mcts:100 mcts:300 mcts:1000 runs/quick+argmax runs/quick+search:16 runs/quick+search:64 runs/quick+search:256 --game connect_four --anchor mcts:10 --games 40 --device cpu --json ladder_c4.json "$@"
date
