namespace MLNet.Align.Terminal;

/// <summary>One writer per output for the CLI: every command that writes a folder (a store, a training or demo
/// <c>--out</c>, a data folder) or a file holds an <see cref="OutputLock"/> on it while it writes, so a second
/// writer fails at once naming the holder; a stale lock of a dead process is taken over with one warning on stderr.</summary>
public static class CliLocks
{
    /// <summary>Locks the output folder <paramref name="folder"/> (lock files are hidden siblings; the folder itself is
    /// left to the command).</summary>
    /// <exception cref="OutputLockedException">Another live process writes it (the message names PID, command, start).</exception>
    public static OutputLock Folder(string folder) => OutputLock.Acquire(folder, CommandLine(), line => Console.Error.WriteLine(line));

    /// <summary>Locks the output file <paramref name="file"/>.</summary>
    /// <exception cref="OutputLockedException">Another live process writes it.</exception>
    public static OutputLock ForFile(string file) => OutputLock.AcquireForFile(file, CommandLine(), line => Console.Error.WriteLine(line));

    /// <summary>"mlnet-align ARGS" for the owner file (the host's own arguments when run in process, e.g. by tests).</summary>
    private static string CommandLine()
    {
        var args = Environment.GetCommandLineArgs();
        bool cli = args.Length > 0 && Path.GetFileNameWithoutExtension(args[0]).Equals("mlnet-align", StringComparison.OrdinalIgnoreCase);
        return cli ? "mlnet-align " + string.Join(' ', args.Skip(1).Select(a => a.Contains(' ') ? $"\"{a}\"" : a)) : string.Join(' ', args);
    }
}
