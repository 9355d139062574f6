// The one translation unit that compiles Asio's and Beast's implementation (separate compilation),
// so that every other unit only parses declarations.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
