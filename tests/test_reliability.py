"""No lost work and no traceback: atomic files, locked rows, exact resume, one line per bad input."""

import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from test_codes_file import make_codes

from scae_hash import atomic, cli
from scae_hash.atomic import OutputError, atomic_path, check_folder, write_text
from scae_hash.codes_file import load_codes, save_codes
from scae_hash.errors import CodesFileError
from scae_hash.model.resume import kept_history
from scae_hash.results import append_rows

REPO = Path(__file__).resolve().parents[1]
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


# --- atomic files --------------------------------------------------------------------------


def test_an_error_between_write_and_rename_keeps_the_old_file(tmp_path):
    target = tmp_path / "table.md"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half of the new")
            raise RuntimeError("killed between write and rename")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]  # no temporary left behind


def test_a_full_disk_is_one_line_and_leaves_the_old_codes_file(tmp_path, monkeypatch):
    path = tmp_path / "codes.h5"
    codes = make_codes(np.random.default_rng(0))
    save_codes(path, codes)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "_fsync", full_disk)  # the disk fills while the new file is flushed
    with pytest.raises(OutputError, match=f"cannot write {path} .No space left on device"):
        save_codes(path, codes)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_codes(path).query.bits, codes.query.bits)
    assert [p.name for p in tmp_path.iterdir()] == ["codes.h5"]


def test_a_full_disk_while_appending_rows_keeps_every_old_row(tmp_path, monkeypatch):
    path = tmp_path / "rows.csv"
    append_rows([{"map": 0.5}], path)
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OutputError, match="No space left on device"):
        append_rows([{"map": 0.6}], path)
    monkeypatch.undo()
    assert pd.read_csv(path)["map"].tolist() == [0.5]


WRITERS = {
    "codes": """
        import numpy as np
        sys.path.insert(0, "tests")
        from test_codes_file import make_codes
        from scae_hash.codes_file import save_codes
        codes = make_codes(np.random.default_rng(1), n_database=200_000, n_bits=64)
        write = lambda: save_codes(path, codes)
    """,
    "model": """
        from scae_hash.hashers.scae import SCAEHasher
        hasher = SCAEHasher.load(path, progress=False)
        write = lambda: hasher.save(path)
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", WRITERS)
def test_kill_9_while_writing_leaves_the_previous_file_loadable(tmp_path, kind):
    """A process rewriting a file in a loop is killed with SIGKILL at a random moment."""
    if kind == "codes":
        path = tmp_path / "codes.h5"
        save_codes(path, make_codes(np.random.default_rng(0)))
        check = lambda: load_codes(path)  # noqa: E731
    else:
        from scae_hash.hashers.scae import SCAEHasher
        from test_scae import tiny_config

        path = tmp_path / "model_16.keras"
        config = tiny_config(pretrain={"enabled": False}, finetune={"epochs": 0})
        SCAEHasher(16, config=config, run_dir=tmp_path, progress=False).fit(np.zeros((8, 28, 28, 1), np.float32))
        check = lambda: SCAEHasher.load(path, progress=False)  # noqa: E731
    script = "import sys, os\npath = sys.argv[1]\n" + textwrap.dedent(WRITERS[kind]) + textwrap.dedent("""
        print("ready", flush=True)
        while True:
            write()
    """)
    writer = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=REPO, env={**os.environ, **QUIET_TF},
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert writer.stdout.readline().strip() == "ready"
    deadline = time.time() + 30
    while not any(p.name.startswith(".") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.01)  # kill while a temporary file is being written
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    check()


# --- locked result rows --------------------------------------------------------------------


def test_two_concurrent_appenders_lose_no_row(tmp_path):
    path = tmp_path / "results.csv"
    script = textwrap.dedent("""
        import sys
        from scae_hash.results import append_rows
        for i in range(100):
            append_rows([{"writer": sys.argv[2], "i": i, "note": "x" * 200}], sys.argv[1])
    """)
    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), name], cwd=REPO, env={**os.environ, **QUIET_TF})
               for name in ("a", "b")]
    assert [w.wait() for w in writers] == [0, 0]
    rows = pd.read_csv(path)
    assert len(rows) == 200
    for name in ("a", "b"):
        assert sorted(rows[rows["writer"] == name]["i"]) == list(range(100))
    assert (rows["note"] == "x" * 200).all()


# --- history of a killed run ------------------------------------------------------------------


def test_a_resumed_history_drops_the_torn_line_and_the_epochs_to_redo():
    text = "epoch,loss\n0,1.5\n1,1.2\n2,1.1\n3,0."
    assert kept_history(text, next_epoch=2) == "epoch,loss\n0,1.5\n1,1.2\n"
    assert kept_history("epoch,lo", next_epoch=0) == ""


# --- bad input: one line, non-zero exit, no traceback ----------------------------------------


def run_cli(argv, capsys) -> tuple[int, list[str]]:
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    return code, lines


def assert_one_line(code, lines, *fragments):
    assert code != 0
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def tiny_config_file(tmp_path) -> Path:
    import yaml

    from test_scae import TINY

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "loss": {"neighbours": 3}}))
    return path


@pytest.mark.parametrize("template", ["{foo}.h5", "{bits.h5", "{0}.h5", "codes-{bits:q}.h5"])
def test_a_bad_codes_out_template_fails_before_any_work(tmp_path, capsys, template):
    code, lines = run_cli(["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "16",
                           "--codes-out", tmp_path / template, "--results-dir", tmp_path / "results", "--quiet"], capsys)
    assert_one_line(code, lines, "--codes-out", "not a valid template")


def test_a_codes_out_template_that_names_one_file_for_several_runs_is_refused(tmp_path, capsys):
    code, lines = run_cli(["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "16", "32",
                           "--codes-out", tmp_path / "{method}.h5", "--no-save", "--quiet"], capsys)
    assert_one_line(code, lines, "same file for several runs")


def test_a_missing_output_folder_fails_before_any_work(tmp_path, capsys):
    code, lines = run_cli(["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "16",
                           "--codes-out", tmp_path / "missing" / "codes.h5", "--no-save", "--quiet"], capsys)
    assert_one_line(code, lines, "does not exist", str(tmp_path / "missing"))


def test_a_results_dir_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "results").write_text("")
    code, lines = run_cli(["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "16",
                           "--results-dir", tmp_path / "results", "--quiet"], capsys)
    assert_one_line(code, lines, "is a file", str(tmp_path / "results"))


def test_a_folder_without_write_permission_fails_before_any_work(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root writes anyway: ask the question as an ordinary user would get it answered
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != folder)
    code, lines = run_cli(["train", "--config", "experiments/configs/mnist.yaml", "--results-dir", folder,
                           "--quiet"], capsys)
    assert_one_line(code, lines, "not writable", str(folder))
    with pytest.raises(OutputError, match="not writable"):
        check_folder(folder)


def test_a_malformed_set_value_is_one_line(capsys):
    code, lines = run_cli(["train", "--config", "experiments/configs/mnist.yaml", "--set", "finetune.epochs=[1",
                           "--quiet"], capsys)
    assert_one_line(code, lines, "finetune.epochs=[1", "not valid YAML")


def test_an_absurd_index_size_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["index", str(tmp_path), "--method", "itq", "--size", "100000", "100000", "--out", str(tmp_path / "i.h5")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "image side must be in 1..4096" in err


@pytest.mark.parametrize("content", [None, b"not a zip at all", b"PK\x03\x04 truncated"], ids=["missing", "garbage", "torn"])
def test_a_missing_or_corrupt_model_is_one_line(tmp_path, capsys, content):
    model = tmp_path / "model_16.keras"
    if content is not None:
        model.write_bytes(content)
    (tmp_path / "images").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "images" / "a.png")
    code, lines = run_cli(["index", tmp_path / "images", "--model", model, "--out", tmp_path / "i.h5", "--quiet"], capsys)
    assert_one_line(code, lines, str(model))


def test_resume_with_a_corrupt_model_names_it_and_the_config_seed_is_used(tmp_path, capsys, tiny_config_file, real_data_dir):
    config = tiny_config_file.read_text() + "seed: 5\n"
    tiny_config_file.write_text(config)
    run_dir = tmp_path / "runs" / "tiny-subset500-seed5"  # the config's seed names the run
    run_dir.mkdir(parents=True)
    (run_dir / "model_16.keras").write_bytes(b"torn")
    code, lines = run_cli(["train", "--config", tiny_config_file, "--bits", "16", "--subset", "500", "--resume",
                           "--data-dir", real_data_dir, "--run-dir", tmp_path / "runs", "--no-save", "--quiet"], capsys)
    assert_one_line(code, lines, str(run_dir / "model_16.keras"), "not a readable .keras model")


def test_more_neighbours_than_training_images_is_refused_before_training(tmp_path, capsys, tiny_config_file, real_data_dir):
    code, lines = run_cli(["train", "--config", tiny_config_file, "--bits", "16", "--subset", "10",
                           "--set", "loss.neighbours=20", "--data-dir", real_data_dir, "--run-dir", tmp_path / "runs",
                           "--no-save", "--quiet"], capsys)
    assert_one_line(code, lines, "'loss.neighbours' is 20", "only 10 images")
    assert not list((tmp_path / "runs").rglob("history_*.csv"))


def test_a_codes_file_whose_queries_are_in_the_database_is_refused(tmp_path, capsys):
    codes = make_codes(np.random.default_rng(0))
    codes.query.index[:] = codes.database.index[:len(codes.query.index)]
    save_codes(tmp_path / "c.h5", codes)
    code, lines = run_cli(["evaluate", tmp_path / "c.h5", "--quiet"], capsys)
    assert_one_line(code, lines, "also in the database", "--allow-overlap")
    with pytest.raises(CodesFileError, match="also in the database"):
        load_codes(tmp_path / "c.h5")
    assert cli.main(["evaluate", str(tmp_path / "c.h5"), "--allow-overlap", "--quiet"]) == 0


def test_a_non_utf8_file_name_is_one_line(tmp_path):
    name = os.fsencode(tmp_path) + b"/codes-\xff.h5"
    done = subprocess.run([sys.executable.encode(), b"-m", b"scae_hash", b"evaluate", name], cwd=REPO,
                          env={**os.environ, **QUIET_TF}, capture_output=True)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "codes-\\xff.h5" in err


def test_an_os_error_is_one_line(capsys, monkeypatch):
    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", "results/scae.csv")

    monkeypatch.setitem(cli.HANDLERS, "evaluate", full_disk)
    code, lines = run_cli(["evaluate", "x.h5"], capsys)
    assert_one_line(code, lines, "No space left on device", "results/scae.csv")


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.HANDLERS, "train", interrupted)  # the parser is built inside main()
    code, lines = run_cli(["train", "--config", "x.yaml"], capsys)
    assert code == 130 and lines == ["scae-hash: interrupted; resume with --resume"]


# --- exact resume ----------------------------------------------------------------------------

RESUME_SCRIPT = textwrap.dedent("""
    import sys, time
    import keras, numpy as np
    sys.path.insert(0, "tests")
    from test_scae import tiny_config
    from scae_hash.hashers.scae import SCAEHasher

    mode, run_dir, out = sys.argv[1:4]
    images = np.random.default_rng(0).random((600, 28, 28, 1), dtype=np.float32)
    config = tiny_config(pretrain={"epochs_per_block": 2}, finetune={"epochs": 4},
                         loss={"neighbours": 3, "remine_every": 2})

    class SlowAfterEpoch(keras.callbacks.Callback):  # gives the parent time to kill after a backup
        def on_epoch_end(self, epoch, logs=None):
            if self.model.name.startswith("hashing") and epoch == 2:
                print("epoch 3 saved", file=sys.__stdout__, flush=True)  # fit sends stdout to stderr
                time.sleep(60)

    callbacks = [SlowAfterEpoch()] if mode == "killed" else []
    hasher = SCAEHasher(16, seed=1, config=config, run_dir=run_dir, resume=mode == "resume", progress=False)
    np.save(out, hasher.fit(images, callbacks=callbacks).encode(images))
""")

BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} missing"))
            for name in ("tensorflow", "jax")]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_mid_finetuning_then_resume_gives_the_uninterrupted_codes(tmp_path, backend):
    """Separate processes, as a user runs them: one uninterrupted run; one killed with SIGKILL
    after its third fine-tuning epoch (between two neighbour re-minings), then resumed."""
    env = {**os.environ, **QUIET_TF, "KERAS_BACKEND": backend}

    def run(mode, run_dir):
        return subprocess.run([sys.executable, "-c", RESUME_SCRIPT, mode, str(run_dir), str(tmp_path / f"{mode}.npy")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    assert run("full", tmp_path / "a").returncode == 0
    killed = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, "killed", str(tmp_path / "b"), str(tmp_path / "x.npy")],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert killed.stdout.readline().strip() == "epoch 3 saved"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert json.loads((tmp_path / "b" / "backup" / "finetune_16" / "training_metadata.json").read_text())["epoch"] == 3
    resumed = run("resume", tmp_path / "b")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "resume.npy"), np.load(tmp_path / "full.npy"))
    assert not (tmp_path / "b" / "backup" / "finetune_16").exists()  # dropped once the model was saved


@pytest.mark.slow
def test_an_interrupted_pretraining_or_finetuning_resumes_exactly(tmp_path):
    """In one process, interrupted (as by Ctrl-C) in a pretraining block or in fine-tuning with
    augmented views only (the ShuffledImages road; the kill -9 test takes the neighbour pairs)."""
    import keras

    from scae_hash.hashers.scae import SCAEHasher
    from test_scae import tiny_config

    images = np.random.default_rng(0).random((600, 28, 28, 1), dtype=np.float32)
    config = tiny_config(pretrain={"epochs_per_block": 2}, finetune={"epochs": 3})

    class Interrupt(keras.callbacks.Callback):
        def __init__(self, stage, epoch):
            super().__init__()
            self.stage, self.epoch = stage, epoch

        def on_epoch_end(self, epoch, logs=None):
            if self.model.name.startswith(self.stage) and epoch == self.epoch:
                raise KeyboardInterrupt

    def fit(run_dir, **kwargs):
        return SCAEHasher(16, seed=1, config=config, run_dir=tmp_path / run_dir, progress=False, **kwargs)

    expected = fit("a").fit(images).encode(images)
    for stage, epoch in [("pretrain_block2", 0), ("hashing", 1)]:
        with pytest.raises(KeyboardInterrupt):
            fit(stage).fit(images, callbacks=[Interrupt(stage, epoch)])
        np.testing.assert_array_equal(fit(stage, resume=True).fit(images).encode(images), expected)


def test_a_damaged_backup_is_refused_in_one_line(tmp_path):
    from scae_hash.hashers.scae import SCAEHasher
    from scae_hash.model.resume import ResumeError
    from test_scae import tiny_config

    backup = tmp_path / "backup" / "finetune_16"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 1, "weights": "epoch1.weights.h5"}')
    (backup / "epoch1.weights.h5").write_bytes(b"torn")
    config = tiny_config(pretrain={"enabled": False}, finetune={"epochs": 2})
    with pytest.raises(ResumeError, match=f"cannot resume from the backup in {backup}.*delete that folder"):
        SCAEHasher(16, config=config, run_dir=tmp_path, resume=True, progress=False).fit(np.zeros((64, 28, 28, 1), np.float32))


def test_a_diverging_run_stops_at_its_first_nan_batch_before_the_hash_head(tmp_path):
    from scae_hash.hashers import scae
    from scae_hash.model.resume import DivergedError
    from test_scae import tiny_config

    config = tiny_config(pretrain={"enabled": False}, finetune={"epochs": 3, "learning_rate": 1e12},
                         loss={"neighbours": 3})
    images = np.random.default_rng(0).random((512, 28, 28, 1), dtype=np.float32)
    with pytest.raises(DivergedError, match=r"finetune_16 diverged: the loss became (nan|inf) at epoch \d, batch \d+; "
                                            r"lower finetune.learning_rate"):
        scae.SCAEHasher(16, config=config, run_dir=tmp_path, progress=False).fit(images)
    assert not (tmp_path / "model_16.keras").exists()


def test_a_diverging_head_stage_stops_at_its_first_nan_batch(tmp_path):
    import keras

    from scae_hash.model.head_stage import train_hash_head
    from scae_hash.model.resume import DivergedError

    head = keras.layers.Dense(16, activation="tanh")
    head.build((None, 8))
    features = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    features[5, 3] = np.nan  # the similarity term's centre is NaN from the first batch on
    with pytest.raises(DivergedError, match=r"^head_16 diverged: the loss became nan at epoch 1, batch 1; "
                                            r"lower head.learning_rate$"):
        train_hash_head(head, features, epochs=3, batch_size=16, learning_rate=1e-3, seed=0, stage="head_16",
                        term_weights={"quantization": 0.1, "similarity": 1.0}, run_dir=tmp_path, progress=False)


def fit_with_ctrl_c(presses: dict[tuple[int, int], int], ended: list[tuple[int, int]]) -> None:
    """Fit a tiny model for 3 epochs of 8 batches inside interrupt_at_batch_end, pressing Ctrl-C
    ``presses[(epoch, batch)]`` times in the middle of that batch; ``ended`` gets the
    (epoch, batch) of every batch that ended."""
    import keras

    from scae_hash.interrupt import StopOnInterrupt, interrupt_at_batch_end

    class Batches(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            for _ in range(presses.get((self.epoch, batch), 0)):
                signal.raise_signal(signal.SIGINT)

        def on_train_batch_end(self, batch, logs=None):
            ended.append((self.epoch, batch))

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((64, 4), np.float32)
    try:
        with interrupt_at_batch_end():
            model.fit(x, x[:, :1], batch_size=8, epochs=3, verbose=0, callbacks=[Batches(), StopOnInterrupt()])
    finally:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored on every way out


def test_ctrl_c_during_training_stops_at_the_end_of_the_running_batch():
    ended = []
    with pytest.raises(KeyboardInterrupt):
        fit_with_ctrl_c({(1, 3): 1}, ended)
    assert ended[-1] == (1, 3) and len(ended) == 8 + 4


def test_a_second_ctrl_c_does_not_wait_for_the_batch_end():
    ended = []
    with pytest.raises(KeyboardInterrupt):
        fit_with_ctrl_c({(1, 3): 2}, ended)
    assert ended[-1] == (1, 2)


def test_ctrl_c_outside_a_fit_does_not_wait():
    from scae_hash.interrupt import interrupt_at_batch_end

    with pytest.raises(KeyboardInterrupt), interrupt_at_batch_end():
        signal.raise_signal(signal.SIGINT)  # loading data, encoding or scoring: nothing to finish
        time.sleep(1)
        pytest.fail("Ctrl-C was deferred outside a fit")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_training_without_ctrl_c_runs_every_batch():
    ended = []
    fit_with_ctrl_c({}, ended)
    assert len(ended) == 3 * 8


@pytest.mark.slow
def test_ctrl_c_during_training_is_one_line_then_resume_finishes(tmp_path, tiny_config_file, real_data_dir):
    tiny_config_file.write_text(tiny_config_file.read_text().replace("epochs: 1", "epochs: 8"))
    argv = [sys.executable, "-m", "scae_hash", "train", "--config", str(tiny_config_file), "--bits", "16",
            "--subset", "1000", "--data-dir", str(real_data_dir), "--run-dir", str(tmp_path / "runs"), "--no-save"]
    env = {**os.environ, **QUIET_TF}
    # a background shell starts its jobs with SIGINT ignored: give the child the default, as a terminal does
    run = subprocess.Popen(argv, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in run.stderr:
        lines.append(line)
        if line.startswith("Epoch 3/8"):
            run.send_signal(signal.SIGINT)
    assert run.wait() == 130
    ours = [line.strip() for line in lines if line.startswith("scae-hash:")]
    assert ours == ["scae-hash: interrupted; resume with --resume"] and not any("Traceback" in line for line in lines)
    finished = subprocess.run(argv + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Epoch 1/8" not in finished.stderr and "Epoch 8/8" in finished.stderr


def test_resume_from_a_damaged_backup_is_one_line(tmp_path, capsys, tiny_config_file, real_data_dir):
    import yaml

    config = yaml.safe_load(tiny_config_file.read_text())
    tiny_config_file.write_text(yaml.safe_dump({**config, "pretrain": {"enabled": False}}))
    backup = tmp_path / "runs" / "tiny-subset500-seed0" / "backup" / "finetune_16"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 1, "weights": "epoch1.weights.h5"}')
    (backup / "epoch1.weights.h5").write_bytes(b"torn")
    code, lines = run_cli(["train", "--config", tiny_config_file, "--bits", "16", "--subset", "500", "--resume",
                           "--data-dir", real_data_dir, "--run-dir", tmp_path / "runs", "--no-save", "--quiet"], capsys)
    assert_one_line(code, lines, f"cannot resume from the backup in {backup}", "delete that folder")


def test_a_non_utf8_output_name_is_refused_before_any_work(tmp_path, capsys):
    name = os.fsdecode(os.fsencode(tmp_path) + b"/codes-\xff.h5")
    code, lines = run_cli(["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "16", "--codes-out", name,
                           "--no-save", "--quiet"], capsys)
    assert_one_line(code, lines, "--codes-out", "codes-\\xff.h5", "not valid UTF-8")


@pytest.fixture
def small_index(tmp_path, capsys) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    index = tmp_path / "index.h5"
    assert cli.main(["index", str(folder), "--method", "itq", "--bits", "16", "--size", "16", "16", "--out", str(index),
                     "--quiet"]) == 0
    capsys.readouterr()
    return index


def test_a_decompression_bomb_query_is_one_line(tmp_path, capsys, small_index):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (14000, 14000)).save(bomb)  # 196 M pixels in a small file
    code, lines = run_cli(["search", small_index, bomb], capsys)
    assert_one_line(code, lines, str(bomb))


@pytest.mark.parametrize("key, value", [("n_bits", 99), ("image_shape", [0, 16, 3])])
def test_an_index_with_edited_attributes_is_one_line(tmp_path, capsys, small_index, key, value):
    import h5py

    with h5py.File(small_index, "r+") as f:
        f.attrs[key] = value
    code, lines = run_cli(["search", small_index, tmp_path / "images" / "0.png"], capsys)
    assert_one_line(code, lines, str(small_index))
