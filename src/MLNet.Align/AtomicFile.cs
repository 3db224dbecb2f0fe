namespace MLNet.Align;

/// <summary>
/// Atomic file writes used everywhere in the library: write a temporary sibling (<c>NAME.tmp-XXXX</c>), flush it to
/// disk, then rename it over the target, so a reader never sees a partial file and a killed run leaves at most a
/// temp file (removed by <see cref="DeleteStaleTemps"/>). The folder is created if needed.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Marker in the names of temporary files.</summary>
    public const string TempMarker = ".tmp-";

    /// <summary>A fresh temporary sibling path of <paramref name="path"/>.</summary>
    public static string TempPathFor(string path) => path + TempMarker + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/> (which must not close the stream).</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = TempPathFor(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no BOM).</summary>
    public static void WriteAllText(string path, string text)
        => Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    /// <summary>Writes bytes.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Deletes a file, ignoring I/O and permission errors (cleanup paths).</summary>
    public static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Removes temp files a killed run left behind in <paramref name="folder"/>.</summary>
    public static void DeleteStaleTemps(string folder)
    {
        if (!Directory.Exists(folder)) return;
        foreach (var f in Directory.EnumerateFiles(folder, "*" + TempMarker + "*")) TryDelete(f);
    }
}
