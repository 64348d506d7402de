from fakepapers._decl import declare

# The runner must stop it: it sleeps far longer than this.
REPRO = declare("fake-hang", timeout_s=10)
