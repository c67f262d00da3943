"""fairseq's DDP on CPU: 2 processes, and 2 simulated nodes, follow the 1-process loss trajectory.

fairseq deals the batches of one update round-robin to the workers, so 2 workers with
--batch-size 4 see exactly the samples that 1 worker sees with --batch-size 4 --update-freq 2.
Dropout is off, so the runs differ only in the order gradients are summed.
"""

import os
import subprocess
import sys

import pytest

UPDATES = 6
TOLERANCE_BITS = 0.002  # per-update loss, as logged (rounded to 3 decimals)
SAME_BATCHES = ["--no-save", "--disable-validation", "--dropout", "0", "--attention-dropout", "0"]
DDP = ["--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp"]


def losses(launch, output):
    steps = launch.logged_records(output, "train_inner")
    assert [s["num_updates"] for s in steps] == list(range(1, UPDATES + 1))
    return [(s["loss"], s["mlm_loss"], s["sbo_loss"], s["bsz"]) for s in steps]


@pytest.fixture(scope="module")
def one_process_losses(corpus_data_dir, tmp_path_factory, launch):
    work = tmp_path_factory.mktemp("one-process")
    args = launch.tiny_training_args(corpus_data_dir, work, UPDATES, batch_size=4,
                                     extra=[*SAME_BATCHES, "--update-freq", "2"])
    return losses(launch, launch.fairseq_train(args, work, "one.log"))


def assert_same_trajectory(expected, actual):
    for update, (want, got) in enumerate(zip(expected, actual), 1):
        assert got[3] == want[3] == 8, f"update {update}: global batch {got[3]} vs {want[3]}"
        for name, w, g in zip(("loss", "mlm_loss", "sbo_loss"), want, got):
            assert abs(w - g) <= TOLERANCE_BITS, f"update {update}: {name} {g} vs {w} (1 process)"


@pytest.mark.slow
def test_two_processes_follow_one_process(one_process_losses, corpus_data_dir, tmp_path, launch):
    args = launch.tiny_training_args(corpus_data_dir, tmp_path, UPDATES, batch_size=4, extra=[*SAME_BATCHES, *DDP])
    output = launch.torchrun_train(args, tmp_path, nproc=2)
    assert "distributed init (rank 1)" in output
    assert_same_trajectory(one_process_losses, losses(launch, output))


@pytest.mark.slow
def test_two_node_launch_trains(one_process_losses, corpus_data_dir, tmp_path, launch):
    """Two torchrun invocations, --nnodes 2, meeting at 127.0.0.1 as two machines would."""
    args = launch.tiny_training_args(corpus_data_dir, tmp_path, UPDATES, batch_size=4, extra=[*SAME_BATCHES, *DDP])
    port = launch.free_port()

    def node(rank):
        return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
                "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
                "-m", "fairseq_cli.train", *args]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "node1.log", "w") as node1_log:
        node1 = subprocess.Popen(node(1), cwd=tmp_path, env=env, stdout=node1_log, stderr=subprocess.STDOUT)
        try:
            output = launch.run(node(0), tmp_path, "node0.log")
            assert node1.wait(timeout=120) == 0, (tmp_path / "node1.log").read_text()[-4000:]
        finally:
            if node1.poll() is None:
                node1.kill()
    assert_same_trajectory(one_process_losses, losses(launch, output))
