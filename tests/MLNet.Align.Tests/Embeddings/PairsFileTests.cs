using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Embeddings;

public class PairsFileTests
{
    [Fact]
    public void ReadsFixtureTsvWithExtraColumnsAndResolvedPaths()
    {
        var pairs = PairsFile.Read(StoreTestData.FixturePairs);
        Assert.Equal('\t', pairs.Delimiter);
        Assert.Equal(["image", "caption", "source", "label"], pairs.Header);
        Assert.Equal(["source", "label"], pairs.ExtraColumns);
        Assert.Equal(56, pairs.Rows.Count);
        Assert.Equal(56, pairs.Images.Count);
        var first = pairs.Rows[0];
        Assert.Equal(2, first.Line);
        Assert.Equal("images/tux_animals_adelaide-rosella.png", first.RawImagePath);
        Assert.Equal(Path.Combine(StoreTestData.FixtureImages, "tux_animals_adelaide-rosella.png"), first.ImagePath);
        Assert.Equal("An Adelaide Rosella.", first.Caption);
        Assert.Equal("tuxpaint", pairs.GetExtra(first, "source"));
        Assert.Equal("animals", pairs.GetExtra(first, "label"));
        Assert.Equal("A “Fuji” apple.", pairs.Rows[4].Caption); // UTF-8 typographic quotes are data in TSV
        Assert.All(pairs.Rows, r => Assert.True(File.Exists(r.ImagePath), r.ImagePath));
        Assert.Equal(57, pairs.Rows[^1].Line);
        Assert.Throws<KeyNotFoundException>(() => pairs.GetExtra(first, "nope"));
        Assert.Equal(64, pairs.Sha256.Length);
    }

    [Fact]
    public void CsvWithQuotedCommasQuotesAndNewlines()
    {
        string dir = StoreTestData.NewTempDir();
        string path = Path.Combine(dir, "pairs.csv");
        File.WriteAllText(path,
            "label,image,caption\n" +
            "cat,a.png,\"A cat, sitting on a mat\"\n" +
            "dog,b.png,\"He said \"\"woof\"\"\"\n" +
            "bird,c.png,\"two\nlines\"\n" +
            "fish,d.png,plain caption\n");
        var pairs = PairsFile.Read(path);
        Assert.Equal(',', pairs.Delimiter);
        Assert.Equal(4, pairs.Rows.Count);
        Assert.Equal("A cat, sitting on a mat", pairs.Rows[0].Caption);
        Assert.Equal("He said \"woof\"", pairs.Rows[1].Caption);
        Assert.Equal("two\nlines", pairs.Rows[2].Caption);
        Assert.Equal(4, pairs.Rows[2].Line);
        Assert.Equal(6, pairs.Rows[3].Line); // the quoted newline took line 5
        Assert.Equal(["label"], pairs.ExtraColumns);
        Assert.Equal("dog", pairs.GetExtra(pairs.Rows[1], "label"));
        Assert.Equal(Path.Combine(dir, "b.png"), pairs.Rows[1].ImagePath);
    }

    [Fact]
    public void MissingColumnErrorNamesFileAndHeaderFound()
    {
        string dir = StoreTestData.NewTempDir();
        string path = Path.Combine(dir, "bad.tsv");
        File.WriteAllText(path, "img\ttext\n1.png\thello\n");
        var e = Assert.Throws<InvalidDataException>(() => PairsFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 1", e.Message);
        Assert.Contains("missing image column 'image'", e.Message);
        Assert.Contains("'img', 'text'", e.Message);

        var e2 = Assert.Throws<InvalidDataException>(() => PairsFile.Read(path, new PairsFileOptions { ImageColumn = "img", CaptionColumn = "caption" }));
        Assert.Contains("missing caption column 'caption'", e2.Message);

        var ok = PairsFile.Read(path, new PairsFileOptions { ImageColumn = "img", CaptionColumn = "text" });
        Assert.Equal("hello", ok.Rows[0].Caption);
    }

    [Fact]
    public void WrongFieldCountNamesLineAndExpectedVsActual()
    {
        string dir = StoreTestData.NewTempDir();
        string path = Path.Combine(dir, "p.tsv");
        File.WriteAllText(path, "image\tcaption\tlabel\na.png\tA.\tx\nb.png\tB.\n");
        var e = Assert.Throws<InvalidDataException>(() => PairsFile.Read(path));
        Assert.Contains($"{path}, line 3", e.Message);
        Assert.Contains("expected 3 fields", e.Message);
        Assert.Contains("found 2", e.Message);

        File.WriteAllText(path, "image\tcaption\n\tA caption\n");
        var e2 = Assert.Throws<InvalidDataException>(() => PairsFile.Read(path));
        Assert.Contains("line 2, column 'image'", e2.Message);
    }

    [Fact]
    public void RelativePathsResolveAgainstTheFileFolderAndDelimiterIsSniffed()
    {
        string dir = StoreTestData.NewTempDir();
        string sub = Directory.CreateDirectory(Path.Combine(dir, "lists")).FullName;
        string abs = Path.Combine(dir, "elsewhere", "z.png");
        string path = Path.Combine(sub, "pairs.txt"); // no known extension: sniffed from the header
        File.WriteAllText(path, $"photo\tdescription\n../imgs/a.png\tA.\nb.png\tB.\n{abs}\tZ.\n");
        var pairs = PairsFile.Read(path, new PairsFileOptions { ImageColumn = "photo", CaptionColumn = "description" });
        Assert.Equal('\t', pairs.Delimiter);
        Assert.Equal(Path.Combine(dir, "imgs", "a.png"), pairs.Rows[0].ImagePath);
        Assert.Equal(Path.Combine(sub, "b.png"), pairs.Rows[1].ImagePath);
        Assert.Equal(abs, pairs.Rows[2].ImagePath);
        Assert.Equal("../imgs/a.png", pairs.Rows[0].RawImagePath);
    }

    [Fact]
    public void RepeatedImagesFormCaptionSets()
    {
        string dir = StoreTestData.NewTempDir();
        string path = Path.Combine(dir, "p.csv");
        File.WriteAllText(path, "image,caption\na.png,first a\nb.png,only b\n./a.png,second a\nc.png,only c\na.png,third a\n");
        var pairs = PairsFile.Read(path);
        Assert.Equal(5, pairs.Rows.Count);
        Assert.Equal(3, pairs.Images.Count);
        Assert.Equal([0, 2, 4], pairs.CaptionRowsByImage[0]);
        Assert.Equal([1], pairs.CaptionRowsByImage[1]);
        Assert.Equal([3], pairs.CaptionRowsByImage[2]);
        Assert.Equal(0, pairs.Rows[2].ImageId); // "./a.png" and "a.png" are the same file
        Assert.Equal(pairs.Rows[0].ImagePath, pairs.Images[0]);
    }

    [Fact]
    public void ImageOnlyFileWithLabels()
    {
        string dir = StoreTestData.NewTempDir();
        string path = Path.Combine(dir, "labelled.csv");
        File.WriteAllText(path, "image,label\na.png,cat\nb.png,dog\n");
        var pairs = PairsFile.Read(path, new PairsFileOptions { CaptionColumn = null });
        Assert.Null(pairs.CaptionColumn);
        Assert.Null(pairs.Rows[0].Caption);
        Assert.Equal("dog", pairs.GetExtra(pairs.Rows[1], "label"));
    }
}
