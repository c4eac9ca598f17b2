# Helpers that register hvnet's tests with ctest.
#
# hvnet_unit_test(NAME SOURCES ... LIBS ...)
#   A cmocka binary tests/unit/test_<module>.c, linked with only its module
#   and the fakes it needs; labelled "unit". Skipped at configure time (with
#   a message) if cmocka is missing, never silently passed.
#
# hvnet_integration_test(NAME COMMAND ... [TIMEOUT s] [LABELS ...])
#   Any program or script; exit 77 means "skipped" (a resource such as
#   /dev/kvm or root is missing), which ctest reports as skipped.
function(hvnet_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT CMOCKA_FOUND)
    message(WARNING "cmocka not found: unit test ${name} not built")
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "unit" TIMEOUT 300)
endfunction()

function(hvnet_integration_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "integration;${T_LABELS}"
                       TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77)
endfunction()
