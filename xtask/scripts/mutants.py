#!/usr/bin/env python3
"""Measures the harness by mutation: plants cargo-mutants' mutants of the engine's storage
and recovery code, one at a time, in a separate work tree, and asks whether a short sweep
or a short exploration notices. A surviving mutant is either equivalent (performance,
error wording) or a class of bug the harness cannot see: read each one.

Needs `cargo install cargo-mutants`. Usage (from the repository's root):
    python3 xtask/scripts/mutants.py [--sample N] [--seed S] [--out DIR]
Writes DIR/results.tsv (index, verdict, seconds, mutant; verdicts: caught-sweep, caught-explore,
caught-differential, caught-unit, SURVIVED, unviable, error-RC) and DIR/N.log for every mutant not SURVIVED. Checks first that the
unmutated tree passes.
"""
import argparse, json, os, random, signal, subprocess, sys, time

FILES = [
    'engine/src/wal/mod.rs', 'engine/src/wal/format.rs', 'engine/src/wal/segment.rs',
    'engine/src/snapshot/loader.rs', 'engine/src/snapshot/mod.rs', 'engine/src/snapshot/writer.rs',
    'engine/src/durable/ubscore.rs', 'engine/src/durable/matching.rs', 'engine/src/durable/settlement.rs',
    'engine/src/durable/follower.rs', 'engine/src/durable/index.rs', 'engine/src/durable/pipeline.rs',
    'engine/src/durable/mod.rs', 'engine/src/ubscore/dedup.rs', 'engine/src/settlement.rs',
    'engine/src/service/node.rs',
]
# `--files all`: every engine file a simulation can run, but the planted bugs themselves, the
# real build's filesystem and transport (the real crash test runs those) and the in-memory
# filesystem of the unit tests; error formatting (`fmt`) is left out everywhere.
NOT_SIMULATED = {'engine/src/bugs.rs', 'engine/src/storage/std_fs.rs', 'engine/src/service/tcp.rs',
                 'engine/src/storage/mem_fs.rs'}
# The harness asked, cheapest first: 10 seeds of every scenario, then explore on 16 commands.
CHECKS = [
    ('caught-sweep', '{bin} sweep --count 10 --jobs 1 --fail-fast --run-timeout 30'),
    ('caught-explore', '{bin} explore --commands 16 --jobs 1'),
    # The in-memory pipeline beside the model: not among the sweep's defaults, and the only
    # run of the pipeline the benchmarks use.
    ('caught-differential', '{bin} sweep --scenarios differential --count 3 --jobs 1 --fail-fast'),
    # Last, for what no run reaches (values past any run's length: a sequence number above
    # 65,535): the engine's own unit tests, in release to share the build.
    ('caught-unit', 'cargo test --release -q -p exsim-engine --lib'),
]


def run(cmd, cwd, env, timeout):
    """Runs `cmd` in its own process group, so that a timeout kills cargo, rustc or exsim too."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, shell=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return 'timeout', 'timed out'


def verdict_of(checks, binary, cwd, env):
    """The first check that fails as a finding (exit 1), else SURVIVED; any other exit
    (a usage error, a panic, a timeout) is an error, not a catch."""
    for name, cmd in checks:
        rc, log = run(cmd.format(bin=binary), cwd, env, 900)
        # exsim exits 1 on a finding; cargo test exits 101 when a test fails.
        if rc == 1 or (name == 'caught-unit' and rc == 101):
            return name, log
        if rc != 0:
            return f'error-{rc}', log
    return 'SURVIVED', ''


def apply(path, mutant):
    """Replaces the mutant's span (1-based lines and columns) with its replacement."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    s, e = mutant['span']['start'], mutant['span']['end']
    head = lines[s['line'] - 1][:s['column'] - 1]
    tail = lines[e['line'] - 1][e['column'] - 1:]
    lines[s['line'] - 1:e['line']] = [head + mutant['replacement'] + tail]
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sample', type=int, default=40)
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--out', default='target/mutants')
    ap.add_argument('--worktree', default='target/mutants/tree')
    ap.add_argument('--files', choices=['storage', 'all'], default='storage',
                    help='storage: the WAL, snapshots, durable services and restart logic (FILES); '
                         'all: every simulated engine file')
    ap.add_argument('--skip', type=int, default=0, help='start at this index of the shuffled list')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if subprocess.run(['git', 'diff', '--quiet', 'HEAD', '--', 'engine'], check=False).returncode != 0:
        sys.exit('engine/ has uncommitted changes: the mutants are listed from HEAD; commit first')
    listed = subprocess.run(['cargo', 'mutants', '--list', '--json', '--package', 'exsim-engine'],
                            capture_output=True, text=True, check=True).stdout
    def chosen(m):
        if '::fmt' in m['name']:
            return False
        return m['file'] in FILES if a.files == 'storage' else m['file'] not in NOT_SIMULATED
    mutants = [m for m in json.loads(listed) if chosen(m)]
    random.Random(a.seed).shuffle(mutants)
    # One work tree, always at HEAD (the mutants' spans are HEAD's).
    subprocess.run(['git', 'worktree', 'prune'], check=True)
    if not os.path.isdir(a.worktree):
        subprocess.run(['git', 'worktree', 'add', '--detach', a.worktree, 'HEAD'], check=True)
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(['git', 'checkout', '-q', '--force', '--detach', head], cwd=a.worktree, check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.abspath(os.path.join(a.out, 'target')),
               CARGO_PROFILE_RELEASE_DEBUG='0',
               # One crate changes per mutant: incremental builds make each rebuild a fraction.
               CARGO_PROFILE_RELEASE_INCREMENTAL='true', CARGO_PROFILE_RELEASE_CODEGEN_UNITS='64')
    env.pop('RUSTFLAGS', None)  # the work tree's .cargo/config.toml builds with --cfg madsim
    binary = os.path.join(env['CARGO_TARGET_DIR'], 'release', 'exsim')
    # The unmutated engine must pass every check, or no verdict below means anything.
    rc, log = run('cargo build --release -q 2>&1', a.worktree, env, 3600)
    baseline = verdict_of(CHECKS, binary, a.worktree, env)[0] if rc == 0 else 'unviable'
    if baseline != 'SURVIVED':
        sys.exit(f'the unmutated tree is {baseline}: fix that first\n{log[-2000:]}')
    print(f'{len(mutants)} mutants chosen; running {a.skip}..{a.skip + a.sample}', file=sys.stderr)
    # A run that resumes (`--skip`) appends to the results of the run it continues.
    mode = 'a' if a.skip > 0 else 'w'
    with open(os.path.join(a.out, 'results.tsv'), mode, encoding='utf-8') as results:
        for i, m in list(enumerate(mutants))[a.skip:a.skip + a.sample]:
            path = os.path.join(a.worktree, m['file'])
            apply(path, m)
            t0 = time.time()
            rc, log = run('cargo build --release -q 2>&1', a.worktree, env, 1800)
            verdict, log = ('unviable', log) if rc != 0 else verdict_of(CHECKS, binary, a.worktree, env)
            if verdict != 'SURVIVED':
                with open(os.path.join(a.out, f'{i}.log'), 'w', encoding='utf-8') as f:
                    f.write(log[-4000:])
            results.write(f"{i}\t{verdict}\t{int(time.time() - t0)}s\t{m['name']}\n")
            results.flush()
            print(f"{i}\t{verdict}\t{m['name']}", file=sys.stderr)
            subprocess.run(['git', 'checkout', '-q', '--', m['file']], cwd=a.worktree, check=True)

if __name__ == '__main__':
    main()
