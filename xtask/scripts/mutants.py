#!/usr/bin/env python3
"""Measures the harness by mutation: plants cargo-mutants' mutants of the engine's storage
and recovery code, one at a time, in a separate work tree, and asks whether a short sweep
or a short exploration notices. A surviving mutant is either equivalent (performance,
error wording) or a class of bug the harness cannot see: read each one.

Needs `cargo install cargo-mutants`. Usage (from the repository's root):
    python3 xtask/scripts/mutants.py [--sample N] [--seed S] [--out DIR]
Writes DIR/results.tsv (index, verdict, seconds, mutant) and DIR/N.log for caught ones.
"""
import argparse, json, os, random, subprocess, sys, time

FILES = [
    'engine/src/wal/mod.rs', 'engine/src/wal/format.rs', 'engine/src/wal/segment.rs',
    'engine/src/snapshot/loader.rs', 'engine/src/snapshot/mod.rs', 'engine/src/snapshot/writer.rs',
    'engine/src/durable/ubscore.rs', 'engine/src/durable/matching.rs', 'engine/src/durable/settlement.rs',
    'engine/src/durable/follower.rs', 'engine/src/durable/index.rs', 'engine/src/durable/pipeline.rs',
    'engine/src/durable/mod.rs', 'engine/src/ubscore/dedup.rs', 'engine/src/settlement.rs',
    'engine/src/service/node.rs',
]
# The harness asked, cheapest first: 10 seeds of every scenario, then explore on 16 commands.
CHECKS = [
    ('caught-sweep', '{bin} sweep --count 10 --jobs 1 --fail-fast --run-timeout 30'),
    ('caught-explore', '{bin} explore --commands 16 --jobs 1'),
]


def run(cmd, cwd, env, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return 'timeout', 'timed out'


def apply(path, mutant):
    """Replaces the mutant's span (1-based lines and columns) with its replacement."""
    lines = open(path).read().split('\n')
    s, e = mutant['span']['start'], mutant['span']['end']
    head = lines[s['line'] - 1][:s['column'] - 1]
    tail = lines[e['line'] - 1][e['column'] - 1:]
    lines[s['line'] - 1:e['line']] = [head + mutant['replacement'] + tail]
    open(path, 'w').write('\n'.join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sample', type=int, default=40)
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--out', default='target/mutants')
    ap.add_argument('--worktree', default='target/mutants/tree')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    listed = subprocess.run(['cargo', 'mutants', '--list', '--json', '--package', 'exsim-engine'],
                            capture_output=True, text=True, check=True).stdout
    mutants = [m for m in json.loads(listed) if m['file'] in FILES]
    random.Random(a.seed).shuffle(mutants)
    if not os.path.isdir(a.worktree):
        subprocess.run(['git', 'worktree', 'add', '--detach', a.worktree, 'HEAD'], check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.abspath(os.path.join(a.out, 'target')),
               CARGO_PROFILE_RELEASE_DEBUG='0')
    env.pop('RUSTFLAGS', None)  # the work tree's .cargo/config.toml builds with --cfg madsim
    binary = os.path.join(env['CARGO_TARGET_DIR'], 'release', 'exsim')
    results = open(os.path.join(a.out, 'results.tsv'), 'a')
    for i, m in enumerate(mutants[:a.sample]):
        subprocess.run(['git', 'checkout', '-q', '--', m['file']], cwd=a.worktree, check=True)
        apply(os.path.join(a.worktree, m['file']), m)
        t0 = time.time()
        rc, log = run('cargo build --release -q 2>&1', a.worktree, env, 1800)
        verdict = 'unviable' if rc != 0 else 'SURVIVED'
        if rc == 0:
            for name, cmd in CHECKS:
                rc, log = run(cmd.format(bin=binary), a.worktree, env, 900)
                if rc != 0:
                    verdict = name
                    open(os.path.join(a.out, f'{i}.log'), 'w').write(log[-4000:])
                    break
        results.write(f"{i}\t{verdict}\t{int(time.time() - t0)}s\t{m['name']}\n")
        results.flush()
        print(f"{i}\t{verdict}\t{m['name']}", file=sys.stderr)
        subprocess.run(['git', 'checkout', '-q', '--', m['file']], cwd=a.worktree, check=True)


if __name__ == '__main__':
    main()
