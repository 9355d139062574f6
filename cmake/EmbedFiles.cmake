# embed_files(<out.cpp> <symbol> <header.h> <namespace> <dir> <file>...): at build time, writes
# <out.cpp> holding the files as byte arrays (cmake/embed_files.cmake) in <namespace>, using the
# EmbeddedFile struct <header.h> declares there; rewritten whenever one of the files changes.
set(EMBED_FILES_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_files.cmake)
function(embed_files out symbol header namespace dir)
  list(TRANSFORM ARGN PREPEND ${dir}/ OUTPUT_VARIABLE paths)
  list(JOIN ARGN "|" names)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DSRC_DIR=${dir} -DFILES=${names} -DSYMBOL=${symbol} -DOUT=${out}
            -DHEADER=${header} -DNAMESPACE=${namespace} -P ${EMBED_FILES_SCRIPT}
    DEPENDS ${paths} ${EMBED_FILES_SCRIPT}
    COMMENT "Embedding ${dir}"
    VERBATIM)
endfunction()
