// pgJDBC workload for test_jdbc.sh (see driver_harness.bash for the common work), run as a
// single-file program: java -cp /usr/share/java/postgresql.jar JdbcWorkload.java
//
// Server-side prepared statements from the first execution: prepareThreshold=-1 on even
// workers, 1 on odd ones; preparedStatementCacheQueries=4 makes the driver Close and re-Parse
// its S_n statements all the time. Also: executeBatch (many Bind/Execute before one Sync), a
// batch with a failing row inside a transaction, a fetchSize cursor (a named portal fetched
// over several Execute/Sync round trips) interleaved with other prepared statements in the
// same transaction, CopyManager COPY in and out.
import java.io.StringReader;
import java.io.StringWriter;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class JdbcWorkload {
  static final String HOST = System.getenv("DRV_HOST");
  static final String PORT = System.getenv("DRV_PORT");
  static final int CLIENTS = Integer.parseInt(System.getenv().getOrDefault("DRV_CLIENTS", "16"));
  static final int ROUNDS = Integer.parseInt(System.getenv().getOrDefault("DRV_ROUNDS", "5"));
  static final boolean RECONNECT = "1".equals(System.getenv("DRV_RECONNECT"));
  static final int COPY_ROWS = 5;
  static final AtomicLong checks = new AtomicLong();

  static void eq(Object got, Object want, String what) {
    if (!Objects.equals(got, want)) {
      throw new AssertionError(what + ": got " + got + ", want " + want);
    }
    checks.incrementAndGet();
  }

  static Connection connect(int w) throws SQLException {
    String url = "jdbc:postgresql://" + HOST + ":" + PORT + "/" + System.getenv("DRV_DBNAME")
        + "?sslmode=" + System.getenv().getOrDefault("DRV_SSLMODE", "disable") + "&prepareThreshold=" + (w % 2 == 0 ? "-1" : "1")
        + "&preparedStatementCacheQueries=4&connectTimeout=20&ApplicationName=jdbc-" + w;
    return DriverManager.getConnection(url, System.getenv("DRV_USER"), System.getenv("DRV_PASSWORD"));
  }

  static long queryLong(Connection c, String sql, Object... args) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) ps.setObject(i + 1, args[i]);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) throw new AssertionError("no row from " + sql);
        return rs.getLong(1);
      }
    }
  }

  static int update(Connection c, String sql, Object... args) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) ps.setObject(i + 1, args[i]);
      return ps.executeUpdate();
    }
  }

  static void oneRound(Connection c, int w, int r) throws Exception {
    String at = "worker " + w + " round " + r + ": ";
    eq(queryLong(c, "SELECT balance FROM drv_accounts WHERE id = ?", w), (long) r * w, at + "balance before");

    c.setAutoCommit(false);
    eq(update(c, "UPDATE drv_accounts SET balance = balance + ? WHERE id = ?", w, w), 1, at + "update count");
    eq(update(c, "INSERT INTO drv_ledger VALUES (?, ?, ?, 'ok')", w, r, w), 1, at + "insert count");
    c.commit();

    update(c, "INSERT INTO drv_ledger VALUES (?, ?, 1000, 'rolled back')", w, r);
    try {
      queryLong(c, "SELECT 1 / ?", 0);
      throw new AssertionError(at + "1 / 0 did not fail");
    } catch (SQLException e) {
      eq(e.getSQLState(), "22012", at + "division by zero");
    }
    c.rollback();
    eq(queryLong(c, "SELECT count(*) FROM drv_ledger WHERE worker = ? AND note <> 'ok'", w), 0L,
        at + "rolled-back rows visible");

    // A batch: many Bind/Execute before one Sync. Then one with a NULL in the middle: the
    // whole transaction rolls back.
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO drv_scratch VALUES (?, ?, ?, 'batch')")) {
      for (int n = 0; n < 10; n++) {
        ps.setInt(1, w);
        ps.setInt(2, r);
        ps.setInt(3, n);
        ps.addBatch();
      }
      int[] counts = ps.executeBatch();
      eq(counts.length, 10, at + "batch size");
    }
    c.commit();
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO drv_scratch VALUES (?, ?, ?, 'bad batch')")) {
      for (int n = 0; n < 6; n++) {
        ps.setInt(1, w);
        ps.setInt(2, r);
        if (n == 3) ps.setNull(3, java.sql.Types.INTEGER); else ps.setInt(3, n);
        ps.addBatch();
      }
      ps.executeBatch();
      throw new AssertionError(at + "batch with a NULL did not fail");
    } catch (BatchUpdateException e) {
      eq(e.getSQLState(), "23502", at + "not-null violation");
    }
    c.rollback();

    // A cursor: fetchSize makes the driver bind a named portal and fetch it 3 rows at a time,
    // one Execute + Sync each, while other prepared statements run in the same transaction.
    try (PreparedStatement ps = c.prepareStatement(
            "SELECT n FROM drv_scratch WHERE worker = ? AND round = ? ORDER BY n")) {
      ps.setFetchSize(3);
      ps.setInt(1, w);
      ps.setInt(2, r);
      List<Integer> got = new ArrayList<>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          got.add(rs.getInt(1));
          // 10 more statements: past the proxy's cache of 8, the portal's statement must stay.
          eq(queryLong(c, "SELECT ?::int + " + got.size(), w), (long) w + got.size(), at + "inside the cursor");
        }
      }
      List<Integer> want = new ArrayList<>();
      for (int n = 0; n < 10; n++) want.add(n);
      eq(got, want, at + "cursor rows");
    }
    c.commit();
    c.setAutoCommit(true);

    CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
    StringBuilder in = new StringBuilder();
    for (int i = 0; i < COPY_ROWS; i++) {
      in.append(w).append('\t').append(r).append('\t').append(i).append('\t')
          .append(w + "-" + r + "-" + i).append('\n');
    }
    eq(copy.copyIn("COPY drv_copied (worker, round, i, payload) FROM STDIN", new StringReader(in.toString())),
        (long) COPY_ROWS, at + "copyIn rows");
    StringWriter out = new StringWriter();
    copy.copyOut("COPY (SELECT i, payload FROM drv_copied WHERE worker = " + w + " AND round = " + r
        + " ORDER BY i) TO STDOUT", out);
    StringBuilder want = new StringBuilder();
    for (int i = 0; i < COPY_ROWS; i++) want.append(i).append('\t').append(w + "-" + r + "-" + i).append('\n');
    eq(out.toString(), want.toString(), at + "copyOut rows");
  }

  public static void main(String[] args) throws Exception {
    List<Thread> threads = new ArrayList<>();
    List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
    for (int w = 1; w <= CLIENTS; w++) {
      final int worker = w;
      Thread t = new Thread(() -> {
        Connection c = null;
        try {
          for (int r = 0; r < ROUNDS; r++) {
            if (c == null || RECONNECT) {
              if (c != null) c.close();
              c = connect(worker);
            }
            oneRound(c, worker, r);
          }
          eq(queryLong(c, "SELECT balance FROM drv_accounts WHERE id = ?", worker), (long) ROUNDS * worker,
              "worker " + worker + ": final balance");
        } catch (Throwable e) {
          failures.add("worker " + worker + ": " + e);
          e.printStackTrace();
        } finally {
          try {
            if (c != null) c.close();
          } catch (SQLException ignored) {
            // closing after a failure: the failure is what gets reported
          }
        }
      });
      threads.add(t);
      t.start();
    }
    for (Thread t : threads) t.join();
    for (String f : failures.subList(0, Math.min(5, failures.size()))) System.err.println("FAIL: " + f);
    if (!failures.isEmpty()) {
      System.err.println("jdbc: " + failures.size() + " worker(s) failed");
      System.exit(1);
    }
    System.out.println("pgjdbc " + org.postgresql.util.DriverInfo.DRIVER_VERSION + ": " + checks.get()
        + " checks passed");
  }
}
