from fakepapers._decl import declare

REPRO = declare("fake-good")
