// Where the client's conversation with its server connection stands, from the messages that
// pass: how many ReadyForQuery are still owed, whether extended-protocol messages wait for a
// Sync, whether a COPY FROM STDIN is open, and the last transaction status. It answers the one
// question pooling depends on, "is this server connection free again?", in one place, for the
// relay, the release decision, the flip's movability test and the session's end.
//
// Pure bookkeeping: no I/O, no clock. Fed every client message as it is forwarded and every
// server message the relay inspects; unit-tested on recorded message sequences.
#pragma once

#include <cstdint>

namespace pgcutover::proxy {

class TransactionTracker {
 public:
  // A client message of `type` ('Q', 'P', 'B', 'S', 'd', 'c', ...) is being forwarded.
  // True when it asks for a ReadyForQuery (a query for the statistics).
  bool client_sent(char type);

  struct Answer {
    bool release_point = false;  // idle ('I') and nothing more owed: back to a pool
    bool was_busy = false;       // the transaction status before this one was not idle
    bool unexpected = false;     // no ReadyForQuery was owed (a protocol surprise, logged)
  };
  // The server answered ReadyForQuery with `status` ('I', 'T' or 'E').
  Answer ready_for_query(char status);
  // The server sent CopyInResponse: a COPY FROM STDIN is open unless the client already
  // ended it (clients may stream the whole COPY behind the Query).
  void copy_in_started();

  // Nothing owed, no extended messages waiting for Sync, idle, no COPY open: the connection
  // can be released (or moved at a flip) without cutting anything off.
  bool free() const { return settled() && !copy_in_; }
  // free() but a COPY may be open: every answer received and the transaction idle.
  bool settled() const { return outstanding_ == 0 && !ext_pending_ && status_ == 'I'; }
  // Anything still owed or open.
  bool busy() const { return outstanding_ > 0 || ext_pending_ || status_ != 'I' || copy_in_; }
  // The last ReadyForQuery said the transaction failed ('E'): a simple Query is skipped.
  bool failed_transaction() const { return status_ == 'E'; }
  int outstanding() const { return outstanding_; }
  // Extended-protocol messages forwarded and no Sync yet.
  bool extended_pending() const { return ext_pending_; }

  // A server connection was just attached or detached: nothing owed, idle.
  void reset() { *this = TransactionTracker{}; }

 private:
  int outstanding_ = 0;         // ReadyForQuery messages still expected
  bool ext_pending_ = false;    // extended-protocol messages forwarded since the last Sync
  bool copy_in_ = false;        // server sent CopyInResponse; client has not ended the copy
  int copies_ended_early_ = 0;  // CopyDone/CopyFail relayed before their CopyInResponse
  char status_ = 'I';           // the last ReadyForQuery's transaction status
};

}  // namespace pgcutover::proxy
