// Private status helpers (Abseil 20220623 ships no RETURN_IF_ERROR macros).
#ifndef MOVE_CORE_STATUS_MACROS_H_
#define MOVE_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the current function with `expr`'s status if it is not OK.
#define MOVE_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    const absl::Status move_status_ = (expr);      \
    if (!move_status_.ok()) return move_status_;   \
  } while (0)

#define MOVE_STATUS_CONCAT_INNER_(a, b) a##b
#define MOVE_STATUS_CONCAT_(a, b) MOVE_STATUS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the
// value into `lhs` (which may be a declaration such as `auto x`).
#define MOVE_ASSIGN_OR_RETURN(lhs, rexpr) \
  MOVE_ASSIGN_OR_RETURN_IMPL_(MOVE_STATUS_CONCAT_(move_statusor_, __LINE__), lhs, rexpr)

#define MOVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return statusor.status();           \
  lhs = std::move(statusor).value()

#endif  // MOVE_CORE_STATUS_MACROS_H_
