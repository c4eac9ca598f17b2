# Run by `cmake --install`: writes vswitchd.service from its template with
# the paths of this installation (the prefix is only known now). Inputs are
# set by the install(CODE) before it in the top-level CMakeLists.txt.
foreach(v BINDIR DOCDIR UNITDIR)
  if(IS_ABSOLUTE "${HVNET_${v}}")
    set(full_${v} "${HVNET_${v}}")
  else()
    set(full_${v} "${CMAKE_INSTALL_PREFIX}/${HVNET_${v}}")
  endif()
endforeach()
set(CMAKE_INSTALL_FULL_BINDIR "${full_BINDIR}")
set(CMAKE_INSTALL_FULL_DOCDIR "${full_DOCDIR}")
set(unit "$ENV{DESTDIR}${full_UNITDIR}/vswitchd.service")
message(STATUS "Installing: ${unit}")
configure_file("${HVNET_UNIT_TEMPLATE}" "${unit}" @ONLY)
