#include "proxy/session/transaction_tracker.h"

#include "protocol/messages.h"

namespace pgcutover::proxy {
namespace fe = protocol::frontend;

namespace {

bool is_extended(char type) {
  return type == fe::kParse || type == fe::kBind || type == fe::kDescribe || type == fe::kExecute ||
         type == fe::kClose || type == fe::kFlush;
}

}  // namespace

bool TransactionTracker::client_sent(char type) {
  switch (type) {
    case fe::kQuery:
    case fe::kFunctionCall:
      ++outstanding_;
      return true;
    case fe::kSync:
      // The server ignores Sync during COPY FROM STDIN (protocol docs, "COPY Operations"):
      // no ReadyForQuery will answer it.
      if (copy_in_) return false;
      ++outstanding_;
      ext_pending_ = false;
      return true;
    case fe::kCopyDone:
    case fe::kCopyFail:
      // A client may stream the whole COPY right behind its Query (asyncpg does), before the
      // proxy has read the CopyInResponse: that copy is already over when the response comes.
      if (copy_in_) {
        copy_in_ = false;
      } else {
        ++copies_ended_early_;
      }
      return false;
    default:
      if (is_extended(type)) ext_pending_ = true;
      return false;
  }
}

TransactionTracker::Answer TransactionTracker::ready_for_query(char status) {
  Answer a;
  if (outstanding_ > 0) {
    --outstanding_;
  } else {
    a.unexpected = true;
  }
  a.was_busy = status_ != 'I';
  status_ = status;
  // Everything sent has been answered: a COPY that failed to start (no CopyInResponse) is
  // over too.
  if (outstanding_ == 0) copies_ended_early_ = 0;
  a.release_point = status == 'I' && outstanding_ == 0 && !ext_pending_;
  return a;
}

void TransactionTracker::copy_in_started() {
  if (copies_ended_early_ > 0) {
    --copies_ended_early_;
  } else {
    copy_in_ = true;
  }
}

}  // namespace pgcutover::proxy
