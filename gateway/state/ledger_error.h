#pragma once
// The one error shape every spend-ledger failure takes (code ledger_unavailable), whichever store.
#include <string>

#include "core/result.h"

namespace gateway {

inline core::Error ledger_error(const std::string& where, const std::string& what) {
  return core::make_error(core::ErrorKind::internal, "spend ledger " + where + ": " + what, core::ErrorSource::gateway,
                          "ledger_unavailable");
}

}  // namespace gateway
