namespace MLNet.Align.Cli;

/// <summary>Says where an evaluation command's embedding cache is when the user did not choose one: the default
/// (<c>$MLNET_ALIGN_CACHE</c>, else <c>~/.cache/mlnet-align/embeddings</c>) is shared by every run of every command, so
/// it grows and is reused silently unless the user hears about it once.</summary>
internal static class CliCache
{
    /// <summary>The one stderr line for a default cache; null when the user gave <c>--cache</c>.</summary>
    /// <param name="given">The --cache value (null = not given).</param>
    /// <param name="root">The folder the cache opened.</param>
    /// <param name="hasOption">The command has a --cache option (else only the environment variable moves it).</param>
    public static string? DefaultLine(string? given, string root, bool hasOption = true)
        => given is not null ? null
            : $"cache: {root} (the default shared by every run: $MLNET_ALIGN_CACHE, else ~/.cache/mlnet-align/embeddings; " +
              (hasOption ? "--cache DIR puts it elsewhere)" : "set MLNET_ALIGN_CACHE to put it elsewhere)");

    /// <summary>Writes <see cref="DefaultLine"/> to stderr when there is one.</summary>
    public static void Announce(string? given, string root, bool hasOption = true)
    {
        if (DefaultLine(given, root, hasOption) is { } line) Console.Error.WriteLine(line);
    }
}
