# fuzz/fuzz.mk: fuzz harnesses, their corpus replay in `make test`, and the
# libFuzzer / AFL++ builds (make fuzz, make fuzz-run, make fuzz-afl).

# Link-order fix (until the top Makefile has one): core/ calls keel_panic,
# which io_sim provides, but LIBS_ALL lists io_sim before core, so a test
# that pulls an asserting core object would not link. Scanning io_sim once
# more after core resolves it (tests get io_sim's panic, as DESIGN says).
$(BIN)/test_%: LDLIBS_ALL = $(LIB_io_sim) $(PKG_LIBS) -lpthread -lm
