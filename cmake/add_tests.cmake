# One Criterion executable per module, registered with CTest.
#   tests/unit/test_NAME.c         -> test_NAME       (label unit)
#   tests/integration/test_NAME.c  -> itest_NAME      (label integration)
# Both link the agent library and tests/support/*.c (which start real servers).
pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)

file(GLOB OB_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/support/*.c)
add_library(obtestsupport STATIC ${OB_TEST_SUPPORT} ${CMAKE_SOURCE_DIR}/tests/support/empty.c)
target_include_directories(obtestsupport PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
target_link_libraries(obtestsupport PUBLIC offboardcore PkgConfig::CRITERION)
target_compile_definitions(obtestsupport PUBLIC
  OB_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
  OB_BINARY_DIR="${CMAKE_BINARY_DIR}"
  OB_OFFBOARD_BIN="$<TARGET_FILE:offboard>")

function(ob_add_test kind file)
  get_filename_component(stem ${file} NAME_WE)
  string(REGEX REPLACE "^test_" "" name ${stem})
  if(kind STREQUAL "integration")
    set(target itest_${name})
  else()
    set(target test_${name})
  endif()
  add_executable(${target} ${file})
  target_link_libraries(${target} PRIVATE obtestsupport)
  add_dependencies(${target} offboard)
  # --jobs 1: tests in one executable share their server and run in order.
  add_test(NAME ${target} COMMAND ${target} --jobs 1 --full-stats)
  # A sanitizer report fails the test even when Criterion already counted it
  # as passed (leaks are found at exit, after the verdict).
  set_tests_properties(${target} PROPERTIES LABELS ${kind} TIMEOUT 300
    FAIL_REGULAR_EXPRESSION "ERROR: (Address|Leak)Sanitizer|runtime error:"
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
endfunction()

file(GLOB OB_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(t ${OB_UNIT_TESTS})
  ob_add_test(unit ${t})
endforeach()
file(GLOB OB_INTEGRATION_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.c)
foreach(t ${OB_INTEGRATION_TESTS})
  ob_add_test(integration ${t})
endforeach()
