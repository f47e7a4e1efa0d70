// Argument errors raised by native code. pybind11 translates std::invalid_argument to
// ValueError and TypeErrorArg (derived from it) is mapped to TypeError in bindings/module.cpp,
// so a bad argument never aborts the interpreter.
#pragma once
#include <stdexcept>
#include <string>

namespace infercore {

struct TypeErrorArg : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

[[noreturn]] inline void fail_value(const std::string& msg) { throw std::invalid_argument(msg); }
[[noreturn]] inline void fail_type(const std::string& msg) { throw TypeErrorArg(msg); }

#define IC_CHECK_VALUE(cond, msg)                 \
  do {                                            \
    if (!(cond)) ::infercore::fail_value(msg);    \
  } while (0)
#define IC_CHECK_TYPE(cond, msg)                  \
  do {                                            \
    if (!(cond)) ::infercore::fail_type(msg);     \
  } while (0)

}  // namespace infercore
