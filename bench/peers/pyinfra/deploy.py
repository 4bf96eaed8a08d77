# The peers workload (research/peers.md §3.2, with a guarded command): per host one
# directory, 50 files (0644, distinct content) and one command that runs only when its
# output file does not exist yet (pyinfra has no `creates`: a File fact is the guard).
# bench_root comes from the generated inventory; each host writes only under
# <bench_root>/<host name>.
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

base = f"{host.data.bench_root}/{host.name}"
files.directory(name="ensure target directory", path=base, mode="755")
for i in range(1, 51):
    files.put(
        name=f"ensure file{i:02d}.txt",
        src=StringIO(f"peerbench file {i:02d}\nThe quick brown fox jumps over the lazy dog.\n"),
        dest=f"{base}/file{i:02d}.txt",
        mode="644",
    )
if not host.get_fact(File, path=f"{base}/uname.txt"):
    server.shell(name="run one command (guarded)", commands=[f"uname -a > {base}/uname.txt"])
