"""The type stub of the extension (fastkern/_C.pyi, made by tools/gen_stub.py): installed next to the
module with the py.typed marker, and current: it lists every name fastkern._C binds and no other."""

import ast
import json
import os
import subprocess
import sys

import fastkern

PKG = os.path.dirname(fastkern.__file__)
STUB = os.path.join(PKG, "_C.pyi")

# The names fastkern._C and its classes bind, from a fresh interpreter that imports the module without
# running fastkern/__init__.py (which adds Python methods to Tensor: tolist, __repr__, ...), as
# tools/gen_stub.py does. Attributes every module or type has are left out.
LIST_NAMES = """
import importlib.util, json, sys, types
spec = importlib.util.find_spec("fastkern")
pkg = types.ModuleType("fastkern")
pkg.__path__ = list(spec.submodule_search_locations)
sys.modules["fastkern"] = pkg
import fastkern._C as C
skip = {"__doc__", "__file__", "__loader__", "__name__", "__package__", "__spec__", "__module__", "__new__"}
out = {"": sorted(set(vars(C)) - skip)}
for name, v in vars(C).items():
    if isinstance(v, type) and v.__module__ == "fastkern._C":  # not the exception made for fastkern.cuda
        out[name] = sorted(k for k, x in vars(v).items()
                           if k not in skip and not isinstance(x, types.WrapperDescriptorType))
print(json.dumps(out))
"""


def stub_names(body):
    names = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                names[t.id] = node
        elif isinstance(node, ast.ImportFrom):  # re-exports: `from m import X as X`
            names.update((a.name, node) for a in node.names if a.asname == a.name)
    return names


def test_stub_and_marker_installed():
    assert os.path.isfile(STUB), "fastkern/_C.pyi is not installed next to the module"
    assert os.path.isfile(os.path.join(PKG, "py.typed"))


def test_stub_lists_every_name_of_the_module():
    bound = json.loads(
        subprocess.run([sys.executable, "-c", LIST_NAMES], check=True, capture_output=True, text=True).stdout
    )
    with open(STUB) as f:
        stub = stub_names(ast.parse(f.read()).body)
    hint = " (rerun tools/gen_stub.py after changing csrc/python)"
    assert sorted(set(bound[""]) - set(stub)) == [], "names of fastkern._C missing from the stub" + hint
    assert sorted(set(stub) - set(bound[""])) == [], "names in the stub that fastkern._C no longer has" + hint
    for cls, members in bound.items():
        if not cls:
            continue
        assert isinstance(stub[cls], ast.ClassDef), cls
        listed = set(stub_names(stub[cls].body))
        assert sorted(set(members) - listed) == [], "members of %s missing from the stub%s" % (cls, hint)
        assert sorted(listed - set(members)) == [], "members of %s in the stub that it no longer has%s" % (cls, hint)
    # the public API through the package: every public name fastkern takes from _C is in the stub
    assert {n for n in dir(fastkern._C) if not n.startswith("_")} <= set(stub)
