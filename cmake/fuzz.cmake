# Fuzzing: one libFuzzer harness per parser of hostile bytes (tests/fuzz/).
#
#   tests/fuzz/fuzz_NAME.c      LLVMFuzzerTestOneInput for one parser
#   tests/fuzz/corpus/NAME/     its seeds and every reproducer found so far
#
# OFFBOARD_FUZZ=ON (clang only) builds every library target with coverage
# instrumentation and ASan/UBSan, and one fuzz_NAME executable per harness;
# scripts/fuzz.sh runs them. Included before the targets are defined so the
# instrumentation reaches offboardcore.
#
# Whenever tests are built, with any compiler, each harness is also linked
# with tests/fuzz/replay.c into fuzz_replay_NAME, which CTest runs on the
# harness's corpus (label fuzz), so the sanitizer build of the test suite
# replays every corpus.
set(OB_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
file(GLOB OB_FUZZ_HARNESSES CONFIGURE_DEPENDS ${OB_FUZZ_DIR}/fuzz_*.c)
list(REMOVE_ITEM OB_FUZZ_HARNESSES ${OB_FUZZ_DIR}/fuzz_support.c)
# A harness for a module that is not in the tree yet is skipped.
if(NOT EXISTS ${CMAKE_SOURCE_DIR}/agent/scrub.h)
  list(REMOVE_ITEM OB_FUZZ_HARNESSES ${OB_FUZZ_DIR}/fuzz_scrub.c)
endif()

if(OFFBOARD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "OFFBOARD_FUZZ needs clang (libFuzzer): configure with CC=clang")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined -gline-tables-only)
  add_link_options(-fsanitize=address,undefined)
endif()

function(ob_fuzz_target target name src)
  target_include_directories(${target} PRIVATE ${OB_FUZZ_DIR})
  target_link_libraries(${target} PRIVATE offboardcore)
  target_compile_definitions(${target} PRIVATE
    OB_FUZZ_DIR="${OB_FUZZ_DIR}"
    OB_FUZZ_MAPPINGS_DIR="${CMAKE_SOURCE_DIR}/mappings")
endfunction()

foreach(src ${OB_FUZZ_HARNESSES})
  get_filename_component(stem ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${stem})
  if(OFFBOARD_FUZZ)
    add_executable(fuzz_${name} ${src} ${OB_FUZZ_DIR}/fuzz_support.c)
    ob_fuzz_target(fuzz_${name} ${name} ${src})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  endif()
  if(BUILD_TESTING)
    add_executable(fuzz_replay_${name} ${src} ${OB_FUZZ_DIR}/fuzz_support.c ${OB_FUZZ_DIR}/replay.c)
    ob_fuzz_target(fuzz_replay_${name} ${name} ${src})
    add_test(NAME fuzz_replay_${name} COMMAND fuzz_replay_${name} ${OB_FUZZ_DIR}/corpus/${name})
    # As cmake/add_tests.cmake: a sanitizer report fails the test.
    set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS fuzz TIMEOUT 120
      FAIL_REGULAR_EXPRESSION "ERROR: (Address|Leak)Sanitizer|runtime error:|oracle failed"
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
  endif()
endforeach()
